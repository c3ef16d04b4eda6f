"""Helpers shared by the benchmark scripts: servers on loopback, machine facts, recording."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "benchmarks.md"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(
    args: list[str],
    url: str,
    env: dict | None = None,
    log: Path | None = None,
    timeout: float = 120,
) -> subprocess.Popen:
    """Start a server process and wait until `url` answers."""
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        args, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{args[:3]} exited early (see {log})")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return process
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError(f"{args[:3]} did not answer at {url}")


def serve_offline(folder: Path) -> tuple[subprocess.Popen, str]:
    """`aift serve` on a fresh offline workspace in `folder`: the process and its API
    base URL (log in folder/server.log)."""
    import sys

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start(
        [sys.executable, "-m", "aift.cli", "serve", "--port", str(port)],
        f"{url}/healthz",
        env={"AIFT_WORKSPACE": str(folder / "ws"), "AIFT_OFFLINE": "1"},
        log=folder / "server.log",
    )
    return server, f"{url}/api/v1"


def wait_job(api: str, job_id: str, timeout: float = 3600) -> dict:
    """Poll a job through the API (`api` ends in /api/v1) until it ends; its record, or
    RuntimeError when it did not succeed in `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = httpx.get(f"{api}/jobs/{job_id}", timeout=60).json()
        if job["status"] in ("succeeded", "failed", "cancelled", "interrupted"):
            if job["status"] != "succeeded":
                raise RuntimeError(f"job {job_id} {job['status']}: {job['error']}")
            return job
        time.sleep(1)
    raise RuntimeError(f"job {job_id} did not finish in {timeout} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = psutil.virtual_memory().total / 1024**3
    return f"{psutil.cpu_count()} cores ({cpu}), {ram:.0f} GiB RAM, no GPU, Python {sys.version.split()[0]}"


def record(section: str, body: str, command: str) -> None:
    """Replace (or append) `section` in docs/benchmarks.md with fresh figures."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    block = (
        f"## {section}\n\nCommand: `{command}`  \nDate: {stamp}  \nMachine: {machine()}\n\n"
        f"{body.strip()}\n"
    )
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmarks\n"
    pattern = re.compile(rf"## {re.escape(section)}\n.*?(?=\n## |\Z)", re.S)
    text = pattern.sub(block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    RESULTS.write_text(text)


def matmul_peak(dtype_name: str, size: int = 2048, rounds: int = 3) -> float:
    """GFLOP/s of torch's square matmuls in `dtype_name` ("float32", "bfloat16"): the best
    of `rounds` half-second windows (a shared VM's neighbours make single windows vary by
    ±30 %). The machine's own peak, measured in the same run as what it is compared with."""
    import torch

    dtype = getattr(torch, dtype_name)
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    a @ b
    best = 0.0
    for _ in range(rounds):
        runs, started = 0, time.perf_counter()
        while time.perf_counter() - started < 0.5:
            a @ b
            runs += 1
        best = max(best, runs * 2 * size**3 / (time.perf_counter() - started) / 1e9)
    return best
