"""Job kinds that belong to the platform itself.

`system.benchmark` measures this machine's matrix-multiply throughput step by step. It
is resumable (a checkpoint after each step), so it doubles as the reference for how a
long, resumable job reports progress and honours cancel.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from aift.jobs.context import JobContext
from aift.jobs.kinds import job_kind


class BenchmarkConfig(BaseModel):
    """Config of the `system.benchmark` job."""

    model_config = ConfigDict(extra="forbid")

    steps: int = Field(10, ge=1, le=10_000, description="Number of measured steps.")
    seconds_per_step: float = Field(1.0, gt=0, le=3600, description="Length of one step.")
    matrix_size: int = Field(256, ge=16, le=4096, description="Side of the square matrices.")


@job_kind("system.benchmark", config=BenchmarkConfig, resumable=True, submittable=True)
def run_benchmark(ctx: JobContext, config: BenchmarkConfig) -> dict[str, Any]:
    """Machine benchmark.

    Measures float32 matrix-multiply GFLOP/s, one checkpoint per step.
    """
    state_file = ctx.work_dir / "benchmark_state.json"
    completed, gflops_per_step = 0, []
    if state_file.exists():
        saved = json.loads(state_file.read_text())
        completed, gflops_per_step = int(saved["completed"]), list(saved["gflops"])
    resumed_from = completed
    if resumed_from:
        ctx.log.info("resuming at step %d of %d", resumed_from + 1, config.steps)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((config.matrix_size, config.matrix_size), dtype=np.float32)
    b = rng.standard_normal((config.matrix_size, config.matrix_size), dtype=np.float32)
    flops_per_matmul = 2.0 * config.matrix_size**3
    for step in range(completed, config.steps):
        ctx.check_cancelled()
        started = time.perf_counter()
        count = 0
        while time.perf_counter() - started < config.seconds_per_step:
            a @ b
            count += 1
            if count % 8 == 0 and ctx.cancelled():
                break
        elapsed = time.perf_counter() - started
        ctx.check_cancelled()
        gflops = flops_per_matmul * count / elapsed / 1e9
        gflops_per_step.append(gflops)
        tmp = state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"completed": step + 1, "gflops": gflops_per_step}))
        tmp.replace(state_file)
        ctx.progress(
            (step + 1) / config.steps,
            f"step {step + 1}/{config.steps}: {gflops:.1f} GFLOP/s",
            force=True,
        )
    return {
        "steps": config.steps,
        "mean_gflops": float(np.mean(gflops_per_step)),
        "resumed_from_step": resumed_from,
        "steps_this_attempt": config.steps - resumed_from,
    }
