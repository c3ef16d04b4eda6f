"""The `aift` command line against a real worker process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import aift_env


def aift(workspace: Path, *args: str, timeout: float = 480) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aift.cli", *args],
        env=aift_env(workspace),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def worker(tmp_path: Path):  # noqa: ANN201
    process = subprocess.Popen(
        [sys.executable, "-m", "aift.cli", "worker"],
        env=aift_env(tmp_path / "ws"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield process
    process.terminate()
    process.wait(timeout=60)


def test_submit_and_wait_shows_the_result(tmp_path: Path, worker) -> None:  # noqa: ANN001
    ws = tmp_path / "ws"
    done = aift(
        ws,
        "jobs",
        "submit",
        "system.benchmark",
        "--config",
        '{"steps": 3, "seconds_per_step": 0.2}',
        "--wait",
    )
    assert done.returncode == 0, done.stderr
    assert "mean_gflops" in done.stdout
    listed = json.loads(aift(ws, "jobs", "list", "--json").stdout)
    assert listed["total"] == 1 and listed["items"][0]["status"] == "succeeded"
    shown = aift(ws, "jobs", "show", listed["items"][0]["id"], "--log")
    assert "step 3/3" in shown.stdout
    job_id = listed["items"][0]["id"]
    log = Path(listed["items"][0]["log_path"])
    assert log.exists()
    assert "deleted" in aift(ws, "jobs", "rm", job_id).stdout
    assert json.loads(aift(ws, "jobs", "list", "--json").stdout)["total"] == 0
    assert not log.exists(), "its log goes with it"


def test_cli_errors_are_messages_not_tracebacks(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    for args, expected in [
        (("jobs", "show", "nope"), "No job with id"),
        (("jobs", "cancel", "nope"), "No job with id"),
        (("jobs", "rm", "nope"), "No job with id"),
        (("jobs", "submit", "system.benchmark", "--config", "{bad"), "not valid JSON"),
        (("jobs", "submit", "system.benchmark", "--config", '{"steps": -1}'), "steps"),
        (("jobs", "submit", "no.kind"), "Unknown job kind"),
        (("models", "show", "gpt-17"), "No model named"),
        (("models", "resolve", "smolm2"), "Did you mean"),
    ]:
        result = aift(ws, *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert expected in result.stderr and "Traceback" not in result.stderr


def test_models_list_and_resolve(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    listed = aift(ws, "models", "list", "--json")
    assert listed.returncode == 0
    names = {m["name"] for m in json.loads(listed.stdout)}
    assert {"SmolLM2-135M-Instruct", "all-MiniLM-L6-v2", "multilingual-e5-small"} <= names
    assert "not available offline" in listed.stderr  # the defaults' fallback is loud
    resolved = json.loads(
        aift(
            ws, "models", "resolve", "intfloat/multilingual-e5-large", "--purpose", "embedding"
        ).stdout
    )
    assert resolved["fallback"] and resolved["name"] == "multilingual-e5-small"
    assert aift(ws, "version").stdout.strip() == "aift 0.1.0"


def test_unreachable_hub_falls_back_to_packaged_models(tmp_path: Path) -> None:
    from tests.integration.conftest import free_port

    dead_hub = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = aift_env(
        tmp_path / "ws",
        AIFT_OFFLINE="0",
        AIFT_HUB_TIMEOUT_SECONDS="3",
        HF_HUB_OFFLINE="0",
        HF_ENDPOINT=dead_hub,
    )

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "aift.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=480,
        )

    resolved = run(
        "models", "resolve", "HuggingFaceTB/SmolLM2-1.7B-Instruct", "--purpose", "llm", "--download"
    )
    assert resolved.returncode == 0, resolved.stderr
    assert json.loads(resolved.stdout)["name"] == "SmolLM2-135M-Instruct"
    assert "could not download" in resolved.stderr and "not available offline" in resolved.stderr
    pulled = run("models", "pull", "someorg/no-such-model")
    assert pulled.returncode == 2 and "not available locally" in pulled.stderr
