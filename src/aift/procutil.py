"""Process helpers shared by workers and job processes."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any, TypeVar

import psutil

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
# A job forked from the fork server shares its command line; it is known by its name
# (/proc/PID/comm, at most 15 characters): "job-" and the first 11 characters of its id.
JOB_NAME_PREFIX = "job-"
JOB_NAME_ID_CHARS = 11
HOSTNAME = socket.gethostname()  # workers record it on the jobs they run


def exit_with_parent(sig: signal.Signals = signal.SIGKILL) -> None:
    """Have this process receive `sig` when its parent dies, so nothing runs unsupervised.

    Uses the kernel's parent-death signal where available, and a polling thread as a
    backstop (the kernel signal fires when the parent *thread* ends).
    """
    parent = os.getppid()
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(sig))
    except (OSError, AttributeError):
        pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), sig)

    if os.getppid() != parent:
        os.kill(os.getpid(), sig)
    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


T = TypeVar("T")
SPAWNER_NAME = "child-spawner"
# One thread for the life of the process (a ThreadPoolExecutor never retires its threads).
_spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix=SPAWNER_NAME)


def on_spawner_thread(work: Callable[[], T]) -> T:
    """Run `work` (a process start) on one thread that lives as long as this process.

    The kernel's parent-death signal fires when the *thread* that started a child ends,
    not the process: a child started from a request's pool thread would be killed when
    that idle thread is retired. Started from this thread, a child's death signal means
    exactly "the process that started me is gone".
    """
    if threading.current_thread().name.startswith(SPAWNER_NAME):
        return work()
    return _spawner.submit(work).result()


def _resolve_prctl() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux
        return None


# Resolved once, here: between fork and exec the child must not dlopen (another thread
# of the parent may have held the loader's lock at the fork), only call.
_PRCTL = _resolve_prctl()


def die_with_parent(sig: signal.Signals) -> Callable[[], None]:
    """A `preexec_fn` giving the child `sig` when its parent dies (set before exec, so
    there is no moment in which the child could outlive it unnoticed)."""
    number = int(sig)

    def set_signal() -> None:
        if _PRCTL is not None:
            _PRCTL(PR_SET_PDEATHSIG, number)

    return set_signal


def popen_tied(
    args: Sequence[str], *, sig: signal.Signals = signal.SIGTERM, **kwargs: Any
) -> subprocess.Popen:
    """`subprocess.Popen` for a child that must never outlive this process: it gets `sig`
    when this process ends, however it ends (SIGKILL included)."""
    return on_spawner_thread(
        lambda: subprocess.Popen(list(args), preexec_fn=die_with_parent(sig), **kwargs)  # noqa: PLW1509
    )


def run_in_foreground(args: Sequence[str]) -> int:
    """Run a long-lived tool (TensorBoard…) as this command's child until it ends; a
    SIGTERM/SIGINT/SIGHUP to this command is passed on to it, and if this command is
    killed outright the child gets SIGTERM from the kernel. Returns its exit code."""
    child = popen_tied(args, stdin=subprocess.DEVNULL)

    def pass_on(signum: int, _frame: Any) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {
        s: signal.signal(s, pass_on) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    }
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:  # Ctrl-C reaches the child too; wait for it to stop
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if child.poll() is None:
            child.terminate()


def start_child(
    module: str, *args: str, death_signal: signal.Signals = signal.SIGKILL
) -> tuple[subprocess.Popen, Connection, Connection]:
    """`python -m module FD_IN FD_OUT *args` with a pipe each way: (process, the
    connection that sends to it, the one that receives from it). The child reads and
    writes `multiprocessing.connection.Connection`s on the two descriptors, and gets
    `death_signal` if this process dies."""
    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()
    process = popen_tied(
        [sys.executable, "-m", module, str(to_child_r), str(to_parent_w), *args],
        sig=death_signal,
        pass_fds=(to_child_r, to_parent_w),
        stdin=subprocess.DEVNULL,
    )
    os.close(to_child_r)
    os.close(to_parent_w)
    return (
        process,
        Connection(to_child_w, readable=False),
        Connection(to_parent_r, writable=False),
    )


def process_alive(pid: int | None, started_at: datetime | None) -> bool:
    """Whether `pid` is a live process that existed when the job started (no pid reuse)."""
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        if started_at is not None and proc.create_time() > started_at.timestamp() + 1:
            return False
        return True
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def job_process_name(job_id: str) -> str:
    """The name the process of job `job_id` takes when it is forked."""
    return JOB_NAME_PREFIX + job_id[:JOB_NAME_ID_CHARS]


def name_process(name: str) -> None:
    """Set this process's name as `ps`, `top` and psutil show it (Linux's prctl)."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def kill_job_process(pid: int | None, job_id: str) -> None:
    """Kill the process of job `job_id` if it still runs (checked by its command line,
    or by its name where it was forked)."""
    if not pid or pid == os.getpid():
        return
    try:
        proc = psutil.Process(pid)
        if job_id in proc.cmdline() or proc.name() == job_process_name(job_id):
            proc.kill()
    except psutil.Error:
        pass
