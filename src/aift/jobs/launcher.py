"""Starts job processes: forked from a warm fork server, or as fresh interpreters.

Every job runs in its own process (a crash or out-of-memory kill costs that job only).
A fresh interpreter spends 5–8 s importing torch, transformers, peft and trl before the
job does anything. With `job_fork_server` on (the default), the worker keeps one
stdlib `multiprocessing` fork server that has imported them once (`aift.jobs.preload`),
and each job is a fork of it: it starts in a fraction of a second, still in a process
of its own. The worker's first job starts as a fresh interpreter; the second starts
the fork server (so a worker that runs one job, say a single long training run, never
holds its memory). The fork server exits with the worker, and each job with it.

Where a GPU is visible the worker starts fresh interpreters instead: a fork of a
process that touched the CUDA or ROCm driver cannot use it, and importing the training
libraries may touch it.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
from multiprocessing.context import ForkServerContext
from pathlib import Path
from typing import Protocol

from aift.allocator import job_environment
from aift.procutil import job_process_name, name_process, popen_tied

log = logging.getLogger(__name__)

PRELOAD_MODULE = "aift.jobs.preload"
JOB_MODULE = "aift.jobs.child"  # a job process's entry point, in both ways
# Device nodes of the NVIDIA and AMD GPU drivers: where one exists, jobs are not forked.
GPU_DEVICE_NODES = ("/dev/nvidiactl", "/dev/kfd")


class JobProcess(Protocol):
    """The running process of one job, as the supervisor watches it."""

    @property
    def pid(self) -> int: ...

    def wait(self, timeout: float | None = None) -> int:
        """The exit code; raises `subprocess.TimeoutExpired` while it still runs."""

    def poll(self) -> int | None: ...

    def send_signal(self, sig: int) -> None: ...

    def kill(self) -> None: ...


class ForkedJob:
    """A job forked from the fork server, with the part of `subprocess.Popen`'s
    interface the supervisor uses (exit codes as Popen gives them: −N for signal N)."""

    def __init__(self, process: multiprocessing.process.BaseProcess) -> None:
        self._process = process

    @property
    def pid(self) -> int:
        pid = self._process.pid
        assert pid is not None, "a started process has a pid"
        return pid

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        code = self._process.exitcode
        if code is None:
            raise subprocess.TimeoutExpired(f"job process {self.pid}", timeout or 0.0)
        return code

    def poll(self) -> int | None:
        return self._process.exitcode

    def send_signal(self, sig: int) -> None:
        if self._process.exitcode is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


def gpu_visible() -> bool:
    """Whether a GPU driver's device node exists on this machine."""
    return any(Path(node).exists() for node in GPU_DEVICE_NODES)


class JobLauncher:
    """Starts each job's process; one per worker process, shared by its threads."""

    def __init__(self, fork_server: bool, allocator: str = "system") -> None:
        """Jobs run in this process's environment with `allocator` preloaded
        (`aift.allocator`); the fork server starts in it, and each forked job gets the
        environment of its start again as `os.environ`."""
        self.allocator = allocator
        self.forking = fork_server and sys.platform == "linux" and not gpu_visible()
        self._context: ForkServerContext | None = None
        self._started = 0
        self._lock = threading.Lock()

    def environment(self) -> dict[str, str]:
        """The environment of a job started now."""
        return job_environment(os.environ.copy(), self.allocator)

    def start(self, job_id: str, log_path: Path) -> JobProcess:
        """Start job `job_id`'s process, its output appended to `log_path`: the worker's
        first job as a fresh interpreter, the later ones as forks (the second starts the
        fork server and waits for its imports, which replace its own)."""
        with self._lock:
            self._started += 1
            context = self._fork_server() if self.forking and self._started > 1 else None
        if context is not None:
            return self._fork(context, job_id, log_path)
        with open(log_path, "ab") as log_file:
            return popen_tied(
                [sys.executable, "-m", JOB_MODULE, job_id],
                sig=signal.SIGKILL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environment(),
            )

    def _fork(self, context: ForkServerContext, job_id: str, log_path: Path) -> ForkedJob:
        """Fork job `job_id`'s process from the fork server (this waits while the server
        is still importing)."""
        process = context.Process(
            target=run_forked,
            args=(job_id, str(log_path), self.environment()),
            name=f"job-{job_id}",
        )
        with self._lock:
            process.start()
        return ForkedJob(process)

    def _fork_server(self) -> ForkServerContext:
        """The fork server's context, starting the server in the jobs' environment the
        first time (the worker's own environment is put back right after; the caller
        holds the lock, so no job start reads it meanwhile)."""
        if self._context is not None:
            return self._context
        context = multiprocessing.get_context("forkserver")
        assert isinstance(context, ForkServerContext)
        context.set_forkserver_preload([PRELOAD_MODULE])
        own = dict(os.environ)
        jobs = self.environment()
        os.environ.clear()
        os.environ.update(jobs)
        try:
            from multiprocessing import forkserver

            forkserver.ensure_running()
        finally:
            os.environ.clear()
            os.environ.update(own)
        log.info("job fork server started; jobs start as forks of it")
        self._context = context
        return context


def run_forked(job_id: str, log_path: str, environment: dict[str, str]) -> None:
    """In a process just forked from the fork server: take the job's name, log file and
    environment, then run the job's entry point as `python -m` would, exit handlers
    and native output buffers included (a fork ends with `os._exit`)."""
    import atexit
    import ctypes
    import runpy

    name_process(job_process_name(job_id))
    log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    os.environ.clear()
    os.environ.update(environment)
    from aift.config import get_settings

    get_settings.cache_clear()
    sys.argv = [JOB_MODULE, job_id]
    try:
        runpy.run_module(JOB_MODULE, run_name="__main__", alter_sys=True)
    finally:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        ctypes.CDLL(None).fflush(None)
