"""No process aift starts outlives it, whether its parent stops (SIGTERM) or is killed
outright (SIGKILL).

Each kind of child is started the way aift starts it, by a real parent process:
`aift serve` (its worker, the worker's job process, the vector index process, a
llama.cpp engine process), `aift tensorboard` (TensorBoard), and for the children that
jobs start — the document parser, a page rendering, torchrun — a parent script that
starts them with aift's own code. Then the parent gets the signal and every child must
be gone.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from aift.procutil import JOB_NAME_PREFIX
from tests.integration.conftest import aift_env, free_port, start_server, wait_for

SIGNALS = [signal.SIGTERM, signal.SIGKILL]
GONE_TIMEOUT = 60.0


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def assert_all_gone(children: list[psutil.Process]) -> None:
    """Every child ends (a zombie waiting for init to reap it counts as gone)."""
    deadline = time.monotonic() + GONE_TIMEOUT
    alive = children
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [c for c in alive if _running(c)]
    assert not alive, f"still running: {[(c.pid, c.cmdline()[:6]) for c in alive]}"


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kinds(children: list[psutil.Process]) -> set[str]:
    """Which of aift's child kinds are among `children` (read from their command lines;
    a job forked from the fork server by its process name)."""
    found = set()
    for child in children:
        try:
            line = " ".join(child.cmdline())
            if child.name().startswith(JOB_NAME_PREFIX):
                found.add("job")
        except psutil.NoSuchProcess:
            continue
        for kind, marker in (
            ("fork server", "multiprocessing.forkserver"),
            ("worker", "aift.cli worker"),
            ("job", "aift.jobs.child"),
            ("index", "aift.rag.index_process"),
            ("engine", "aift.inference.engines.process_child"),
            ("parser", "aift.rag.parser_process"),
            ("tensorboard", "tensorboard.main"),
            ("torchrun", "torch.distributed.run"),
            ("sleeper", "sleep"),
        ):
            if marker in line:
                found.add(kind)
    return found


@pytest.mark.packaged_models
@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_the_server_takes_its_worker_job_index_and_engine_with_it(
    tmp_path: Path, sig: signal.Signals
) -> None:
    server = start_server(tmp_path / "ws")
    try:
        with server.client() as client:
            job = client.post(
                "/api/v1/jobs",
                json={
                    "kind": "system.benchmark",
                    "config": {"steps": 400, "seconds_per_step": 0.5},
                },
            ).json()
            loaded = client.post("/api/v1/models/SmolLM2-135M-Instruct/load", json={})
            assert loaded.status_code == 200, loaded.text
            wait_for(
                lambda: client.get(f"/api/v1/jobs/{job['id']}").json(),
                lambda j: j["status"] == "running",
                timeout=120,
            )
        children = wait_for(
            lambda: {"all": descendants(server.process.pid)},
            lambda v: {"worker", "job", "index", "engine"} <= kinds(v["all"]),
            timeout=120,
        )["all"]
        server.process.send_signal(sig)
        server.process.wait(timeout=120)
        assert_all_gone(children)
    finally:
        server.stop()


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_tensorboard_goes_with_aift_tensorboard(tmp_path: Path, sig: signal.Signals) -> None:
    port = free_port()
    parent = subprocess.Popen(
        [sys.executable, "-m", "aift.cli", "tensorboard", "--port", str(port)],
        env=aift_env(tmp_path / "ws"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(
            lambda: {"up": _answers(f"http://127.0.0.1:{port}/")},
            lambda v: v["up"],
            timeout=180,
        )
        children = descendants(parent.pid)
        assert "tensorboard" in kinds(children)
        parent.send_signal(sig)
        parent.wait(timeout=60)
        assert_all_gone(children)
        assert not _answers(f"http://127.0.0.1:{port}/"), "the port is free again"
    finally:
        parent.kill()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


# A parent that starts children with aift's own code, prints "ready", then waits to be
# signalled: the document parser (start_child), a long tool run with the parent-death
# signal (how OCR and page renderings run), and torchrun's launch (popen_tied).
PARENT = """
import signal, subprocess, sys, threading, time
from aift.procutil import die_with_parent, popen_tied
from aift.rag.parser_process import ParserOptions, ParserProcess

parser = ParserProcess(ParserOptions("rapidocr", ["en"], 60.0))
parser._start()  # as a parse does, before sending the first file
threading.Thread(
    target=lambda: subprocess.run(["sleep", "600"], preexec_fn=die_with_parent(signal.SIGKILL)),
    daemon=True,
).start()
# started from a thread that ends at once: the child must still live as long as we do
done = threading.Thread(target=lambda: popen_tied(
    [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "1",
     "--no-python", "sleep", "600"], stdin=subprocess.DEVNULL))
done.start(); done.join()
print("ready", flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
while True:
    time.sleep(1)
"""


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_children_of_job_processes_go_with_them(tmp_path: Path, sig: signal.Signals) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "ws")],
        env=aift_env(tmp_path / "ws"),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "ready"
        children = wait_for(
            lambda: {"all": descendants(parent.pid)},
            lambda v: {"parser", "torchrun", "sleeper"} <= kinds(v["all"]),
            timeout=120,
        )["all"]
        time.sleep(2)  # the thread that started torchrun has ended: torchrun lives on
        assert all(_running(c) for c in children), "a child died with its starting thread"
        parent.send_signal(sig)
        parent.wait(timeout=60)
        assert_all_gone(children)
    finally:
        parent.kill()
