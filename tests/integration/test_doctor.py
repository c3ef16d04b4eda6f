"""`aift doctor` on this machine: the CPU against llama.cpp's variants with a real decode
in a child process, the embedder, OCR, disk, memory, default models, services; exit 1
when something configured is broken. The same report on /api/v1/system/doctor."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aift.native.cpu import cpu_info
from aift.native.llamacpp_backend import VARIANT_FLAGS
from tests.integration.conftest import LiveServer, aift_env, free_port

pytestmark = pytest.mark.packaged_models


def doctor(workspace: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aift.cli", "doctor", "--json"],
        env=aift_env(workspace, **env),
        capture_output=True,
        text=True,
        timeout=600,
    )


def by_name(report: dict) -> dict[str, dict]:
    return {check["name"]: check for check in report["checks"]}


def test_this_machine_passes_and_runs_the_fastest_variant_it_can(tmp_path: Path) -> None:
    done = doctor(tmp_path / "ws")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    checks = by_name(report)
    assert report["ok"] and set(checks) >= {
        "cpu",
        "llama.cpp",
        "native-libraries",
        "ocr",
        "disk",
        "memory",
        "model:llm",
        "service:redis",
    }
    llama = checks["llama.cpp"]
    assert llama["status"] == "ok", llama
    details = llama["details"]
    assert details["portable"] and details["decode"]["result"] == "runs"
    variant = details["variant"]
    flags = cpu_info().flags
    assert set(VARIANT_FLAGS[variant]) <= flags, "never a family the CPU does not list"
    better = [  # every richer variant the CPU lists was tried first and did not run
        name
        for name, needs in VARIANT_FLAGS.items()
        if len(needs) > len(VARIANT_FLAGS[variant]) and set(needs) <= flags
    ]
    results = {p["variant"]: p["result"] for p in details["probes"]}
    assert all(results.get(name) in {"crashed", "unsupported", "failed"} for name in better)
    assert checks["native-libraries"]["status"] == "ok"
    assert checks["model:llm"]["status"] in {"ok", "warn"}  # offline: the packaged stand-in
    if checks["model:llm"]["status"] == "warn":
        assert checks["model:llm"]["fix"].startswith("aift models pull")


def test_a_configured_service_that_does_not_answer_fails_with_its_fix(tmp_path: Path) -> None:
    dead = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    done = doctor(tmp_path / "ws", AIFT_REDIS_URL=dead)
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(done.stdout)
    redis = by_name(report)["service:redis"]
    assert redis["status"] == "fail" and "unset AIFT_REDIS_URL" in redis["fix"]
    assert "hunter2" not in done.stdout + done.stderr, "no password in the report"
    assert not report["ok"]


def test_the_server_reports_the_same_checks(server: LiveServer) -> None:
    with server.client() as client:
        report = client.get("/api/v1/system/doctor").json()
        assert report["ok"] and by_name(report)["llama.cpp"]["status"] == "ok"
        system = client.get("/api/v1/system").json()
        assert system["doctor"]["checks"], "the last report travels with /api/v1/system"
        page = client.get("/partials/dashboard").text
        assert 'data-doctor="ok"' in page and 'id="doctor-heading"' in page
