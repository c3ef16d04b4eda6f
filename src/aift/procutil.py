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
from datetime import datetime
from multiprocessing.connection import Connection

import psutil

PR_SET_PDEATHSIG = 1
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


def start_child(module: str, *args: str) -> tuple[subprocess.Popen, Connection, Connection]:
    """`python -m module FD_IN FD_OUT *args` with a pipe each way: (process, the
    connection that sends to it, the one that receives from it). The child reads and
    writes `multiprocessing.connection.Connection`s on the two descriptors."""
    to_child_r, to_child_w = os.pipe()
    to_parent_r, to_parent_w = os.pipe()
    process = subprocess.Popen(
        [sys.executable, "-m", module, str(to_child_r), str(to_parent_w), *args],
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


def kill_job_process(pid: int | None, job_id: str) -> None:
    """Kill the process of job `job_id` if it still runs (checked by its command line)."""
    if not pid or pid == os.getpid():
        return
    try:
        proc = psutil.Process(pid)
        if job_id in proc.cmdline():
            proc.kill()
    except psutil.Error:
        pass
