"""A full disk and a read-only workspace: uploads and jobs fail saying so, reads keep
working, and the database comes out intact — on a real small tmpfs holding the whole
workspace (database included), with a real server."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.integration.conftest import LiveServer, aift_env, free_port, start_server, wait_for

DOC = "The lighthouse of Skarn was lit in 1874 and burns paraffin from the mainland.\n"


@contextlib.contextmanager
def small_disk(path: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of `size_mb` at `path` (needs root, as in this project's CI containers)."""
    path.mkdir(parents=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def remount(path: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(path)], check=True)


def fill(path: Path) -> Path:
    """Write until the disk refuses; returns the filler file (delete it to free the disk)."""
    filler = path / "filler.bin"
    block = b"\0" * (256 * 1024)
    with open(filler, "wb") as out:
        with contextlib.suppress(OSError):
            while True:
                out.write(block)
                out.flush()
    return filler


def api(server: LiveServer, method: str, path: str, **kwargs) -> httpx.Response:  # noqa: ANN003
    return httpx.request(method, f"{server.url}/api/v1{path}", timeout=300, **kwargs)


def upload(server: LiveServer, kb: str, name: str, data: bytes) -> httpx.Response:
    return api(server, "POST", f"/kb/{kb}/documents", files=[("files", (name, data))])


def finished(server: LiveServer, job_id: str) -> dict:
    return wait_for(
        lambda: api(server, "GET", f"/jobs/{job_id}").json(),
        lambda j: j["status"] in ("succeeded", "failed", "cancelled", "interrupted"),
        timeout=600,
    )


def intact(workspace: Path) -> None:
    with sqlite3.connect(workspace / "metadata" / "aift.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.fixture(scope="module")
def disk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # 128 MB: the embedded index maps its segment files; a smaller disk runs out under
    # the maps of a fresh index process (SIGBUS), not under aift's own writes.
    with small_disk(tmp_path_factory.mktemp("disk") / "mnt", 128) as mounted:
        yield mounted


@pytest.fixture(scope="module")
def server(disk: Path) -> Iterator[LiveServer]:
    live = start_server(disk / "ws", log_dir=disk.parent)  # the log must have room
    yield live
    live.stop()


@pytest.fixture(scope="module")
def kb(server: LiveServer) -> str:
    created = api(server, "POST", "/kb", json={"name": "coast"})
    assert created.status_code == 201, created.text
    kb_id = created.json()["id"]
    sent = upload(server, kb_id, "lighthouse.md", DOC.encode())
    assert sent.status_code == 202, sent.text
    assert finished(server, sent.json()["job_id"])["status"] == "succeeded"
    return kb_id


def test_a_full_disk_fails_uploads_and_jobs_clearly_and_loses_nothing(
    server: LiveServer, disk: Path, kb: str
) -> None:
    job = api(
        server,
        "POST",
        "/jobs",
        json={"kind": "system.benchmark", "config": {"steps": 60, "seconds_per_step": 0.5}},
    ).json()
    running = wait_for(
        lambda: api(server, "GET", f"/jobs/{job['id']}").json(), lambda j: j["progress"] > 0
    )
    filler = fill(disk)
    try:
        refused = upload(server, kb, "more.md", DOC.encode() * 20_000)  # ~1.6 MB
        assert refused.status_code == 507, refused.text
        assert "disk is full" in refused.json()["error"]["message"]
        # what is stored still reads
        documents = api(server, "GET", f"/kb/{kb}/documents").json()
        assert [d["name"] for d in documents] == ["lighthouse.md"]
        hits = api(server, "POST", f"/kb/{kb}/search", json={"query": "lighthouse fuel"})
        assert hits.status_code == 200 and hits.json()["hits"]
        # the job cannot save its checkpoint: its process ends (its end may wait for space)
        wait_for(
            lambda: {"alive": psutil.pid_exists(running["process_pid"])},
            lambda state: not state["alive"],
            timeout=120,
        )
    finally:
        filler.unlink()
    failed = finished(server, job["id"])
    assert failed["status"] == "failed"
    assert "disk is full" in (failed["error"] or ""), failed
    assert not list((disk / "ws" / "temp_uploads").iterdir()), "a failed upload left a file"
    intact(disk / "ws")
    again = upload(server, kb, "more.md", DOC.encode() * 200)
    assert again.status_code == 202, again.text
    assert finished(server, again.json()["job_id"])["status"] == "succeeded"


def test_a_read_only_workspace_is_refused_at_start_and_left_intact(
    server: LiveServer, disk: Path, kb: str
) -> None:
    """A mount cannot turn read-only under a server holding files open for writing; a
    workspace that is read-only when aift starts (a remount after a disk error, a
    snapshot) is refused by every process with the reason, and nothing is touched."""
    before = api(server, "GET", f"/kb/{kb}/documents").json()
    server.stop()
    remount(disk, "ro")
    try:
        env = aift_env(disk / "ws")
        serve = subprocess.run(
            [sys.executable, "-m", "aift.cli", "serve", "--port", str(free_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert serve.returncode == 2, serve.stdout + serve.stderr
        assert "read-only" in serve.stderr, serve.stderr
        dataset = disk.parent / "rows.jsonl"
        dataset.write_text('{"prompt": "a", "completion": "b"}\n' * 12)
        add = subprocess.run(
            [sys.executable, "-m", "aift.cli", "datasets", "add", str(dataset)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert add.returncode == 2 and "read-only" in add.stderr, add.stdout + add.stderr
    finally:
        remount(disk, "rw")
    intact(disk / "ws")
    again = start_server(disk / "ws", log_dir=disk.parent)
    try:
        assert api(again, "GET", f"/kb/{kb}/documents").json() == before
        accepted = upload(again, kb, "later.md", DOC.encode() + b"Writable again.\n")
        assert accepted.status_code == 202, accepted.text
        assert finished(again, accepted.json()["job_id"])["status"] == "succeeded"
    finally:
        again.stop()
