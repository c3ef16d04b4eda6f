"""One thread budget for the machine aift shares between serving, jobs and the index.

Serving, ingestion, training and the vector index run side by side on one box (the
normal case on a laptop). Left alone, each process sizes its thread pools to every core
and OpenMP threads spin while they wait, so processes steal each other's cores and a
chat answer crawls while a LoRA run trains. Each process aift starts therefore takes
its role's plan before it loads any numeric library:

- the server (interactive) uses the whole budget at normal priority;
- jobs (training, ingestion, merges) use it too, but at a lower priority, so they take
  what the server leaves and yield at once when a request arrives;
- the index process uses one thread at a slightly lower priority;
- everyone's OpenMP threads spin only briefly (GOMP_SPINCOUNT, a few microseconds)
  before they sleep: hot enough that a decode step's many parallel regions run back to
  back, never long enough to hold a core another process needs. (Fully passive waits,
  OMP_WAIT_POLICY=PASSIVE, made llama.cpp decode 5× slower; the default spins ~100×
  longer.)

AIFT_THREADS caps the budget (default: the cores this process may run on);
AIFT_JOB_NICENESS sets how far jobs step back (default 10).
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from typing import Literal

from aift.config import Settings

log = logging.getLogger(__name__)

Role = Literal["serve", "job", "index"]
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# Busy-wait iterations of an idle OpenMP thread before it sleeps (libgomp's default is
# 300,000 when no wait policy is set; 0 is OMP_WAIT_POLICY=PASSIVE).
SPIN_COUNT = "10000"


@dataclass(frozen=True)
class ThreadPlan:
    """How many compute threads a process uses and how nice it is."""

    role: Role
    threads: int
    niceness: int


_current: ThreadPlan | None = None


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def plan(settings: Settings, role: Role) -> ThreadPlan:
    """The plan of a process of `role` under the configured budget."""
    total = min(settings.threads or available_cores(), available_cores())
    if role == "serve":
        return ThreadPlan(role, total, 0)
    if role == "job":
        return ThreadPlan(role, total, settings.job_niceness)
    return ThreadPlan(role, 1, min(5, settings.job_niceness))


def apply(thread_plan: ThreadPlan) -> None:
    """Take the plan in this process: thread variables for libraries not loaded yet,
    torch's pools if it is, short OpenMP spins, and the niceness (only ever raised)."""
    global _current
    for name in THREAD_VARIABLES:
        os.environ[name] = str(thread_plan.threads)
    os.environ.setdefault("GOMP_SPINCOUNT", SPIN_COUNT)
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(thread_plan.threads)
    try:
        step = thread_plan.niceness - os.nice(0)
        if step > 0:
            os.nice(step)
    except OSError as exc:
        log.debug("could not change niceness: %s", exc)
    _current = thread_plan


def compute_threads() -> int:
    """Threads a compute engine in this process should use (llama.cpp, torch): the
    process's plan, or every available core when none was applied."""
    return _current.threads if _current is not None else available_cores()
