"""Process helpers shared by workers and job processes."""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import time

PR_SET_PDEATHSIG = 1


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
