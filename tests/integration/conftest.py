"""A real `aift serve` (web app + worker processes) on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.conftest import TEST_MODEL_DIRS

if TYPE_CHECKING:
    from aift.runtime import Runtime

STARTUP_TIMEOUT = 240.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def aift_env(workspace: Path, **extra: str) -> dict[str, str]:
    """Environment of an aift process under test: offline, its own workspace, quick cancel."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIFT_")}
    env.update(
        AIFT_WORKSPACE=str(workspace),
        AIFT_OFFLINE="1",
        AIFT_JOB_CANCEL_GRACE_SECONDS="3",
        AIFT_THREADS="1",  # two test modules run at once on two cores: one thread each
        # Jobs step back for serving (niceness 10) in production; here that would starve
        # one module's jobs behind the other module's servers and jobs: they share fairly.
        AIFT_JOB_NICENESS="0",
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        AIFT_MODEL_DIRS=TEST_MODEL_DIRS,  # the models tests build in pytest's temp folders
    )
    env.update(extra)
    return env


@dataclass
class LiveServer:
    url: str
    port: int
    workspace: Path
    process: subprocess.Popen
    log_file: Path

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120, **kwargs)

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://")

    def stop(self) -> int:
        """Stop like an operator would (SIGTERM) and return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


def start_server(
    workspace: Path, *, args: tuple[str, ...] = (), log_dir: Path | None = None, **env: str
) -> LiveServer:
    """Start `aift serve` on a free port; its output goes to `log_dir` (default: beside
    the workspace)."""
    port = free_port()
    workspace.mkdir(parents=True, exist_ok=True)
    log_file = (log_dir or workspace.parent) / f"server-{port}.log"
    handle = open(log_file, "wb")  # noqa: SIM115 - closed with the process
    process = subprocess.Popen(
        [sys.executable, "-m", "aift.cli", "serve", "--port", str(port), *args],
        env=aift_env(workspace, **env),
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    server = LiveServer(f"http://127.0.0.1:{port}", port, workspace, process, log_file)
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"server did not start in {STARTUP_TIMEOUT}s:\n{server.log()}")


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """Start servers on demand; all are stopped after the test."""
    started: list[LiveServer] = []

    def factory(workspace: Path | None = None, **kwargs) -> LiveServer:  # noqa: ANN003
        server = start_server(workspace or tmp_path / "ws", **kwargs)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One server (with its worker) shared by the tests of a module."""
    live = start_server(tmp_path_factory.mktemp("srv") / "ws")
    yield live
    live.stop()


def wait_for(
    fetch: Callable[[], dict], predicate: Callable[[dict], bool], timeout: float = 240.0
) -> dict:
    """Poll `fetch` until `predicate` holds; fail with the last value seen. The pause
    between polls grows from 0.05 s to 0.5 s: quick conditions are seen at once, and a
    long wait does not keep the server busy answering polls on a 2-core machine."""
    deadline = time.monotonic() + timeout
    pause = 0.05
    value = fetch()
    while not predicate(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value}")
        time.sleep(pause)
        pause = min(pause * 1.5, 0.5)
        value = fetch()
    return value


@contextmanager
def runtime_with_worker(workspace: Path, models: dict[str, Path], **env: str) -> Iterator[Runtime]:
    """A Runtime on a fresh workspace holding copies of `models` (name → folder), and a
    worker process running its jobs; both closed at the end."""
    import shutil

    from aift.config import load_settings
    from aift.runtime import Runtime

    runtime = Runtime.start(load_settings(workspace=workspace, offline=True))
    for name, folder in models.items():
        shutil.copytree(folder, runtime.workspace.models / name)
    runtime.models.scan()
    worker = subprocess.Popen(
        [sys.executable, "-m", "aift.cli", "worker"],
        env=aift_env(workspace, **env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield runtime
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        runtime.close()
