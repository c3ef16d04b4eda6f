"""The thread budget: each role's plan, and what taking it does to a process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from aift import threads
from aift.config import load_settings


def test_roles_share_one_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "available_cores", lambda: 8)
    settings = load_settings(threads=6, job_niceness=12)
    assert threads.plan(settings, "serve") == threads.ThreadPlan("serve", 6, 0)
    assert threads.plan(settings, "job") == threads.ThreadPlan("job", 6, 12)
    assert threads.plan(settings, "index") == threads.ThreadPlan("index", 1, 5)
    # never more threads than cores this process may run on
    assert threads.plan(load_settings(threads=64), "serve").threads == 8
    assert threads.plan(load_settings(threads=None), "job").threads == 8


def test_a_process_takes_its_plan_before_torch_loads() -> None:
    script = (
        "import json, os\n"
        "from aift import threads\n"
        "threads.apply(threads.ThreadPlan('job', 1, 7))\n"
        "import torch\n"
        "print(json.dumps({'nice': os.nice(0), 'torch': torch.get_num_threads(),"
        " 'omp': os.environ['OMP_NUM_THREADS'], 'spin': os.environ['GOMP_SPINCOUNT'],"
        " 'engine': threads.compute_threads()}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    base = os.nice(0)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got == {
        "nice": max(7, base),
        "torch": 1,
        "omp": "1",
        "spin": "10000",
        "engine": 1,
    }
