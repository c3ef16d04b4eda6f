"""One rank of a distributed training run: `python -m aift.training.rank LAUNCH_FILE`.

Started by torchrun (see `aift.training.distributed`), never by hand. Every rank loads the
model and the examples and runs the same Trainer; rank 0 reports to the job through the
events file and writes the output folder's files.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from aift.procutil import exit_with_parent
from aift.training.distributed import RankLaunch
from aift.work.control import Cancelled

log = logging.getLogger("aift.rank")


class RankContext:
    """The training loop's context on one rank: rank 0 writes events, all ranks agree
    on a cancel (rank 0 reads the flag file and broadcasts what it saw)."""

    def __init__(self, launch: RankLaunch, rank: int) -> None:
        self.launch = launch
        self.rank = rank
        self.log = log
        self.stopping = False

    def _emit(self, event: dict[str, Any]) -> None:
        if self.rank != 0:
            return
        with open(self.launch.events_file, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(event) + "\n")

    def progress(self, fraction: float, message: str = "", *, force: bool = False) -> None:
        self._emit({"progress": fraction, "message": message, "force": force})

    def metrics(self, values: dict[str, Any]) -> None:
        self._emit({"metrics": values})

    def stop_needs(self, seconds: float) -> None:
        self._emit({"stop_needs": seconds})

    def cancelled(self) -> bool:
        """Called once per step on every rank (a collective: all ranks must call it)."""
        if self.stopping:
            return True
        import torch
        import torch.distributed as dist

        flag = 1 if self.rank == 0 and Path(self.launch.cancel_file).exists() else 0
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            device = "cuda" if dist.get_backend() == "nccl" else "cpu"
            shared = torch.tensor([flag], device=device)
            dist.broadcast(shared, src=0)
            flag = int(shared.item())
        self.stopping = bool(flag)
        return self.stopping

    def check_cancelled(self) -> None:
        """Raise Cancelled once the ranks agreed to stop (a collective, as `cancelled`)."""
        if self.cancelled():
            raise Cancelled()


def _write_result(launch: RankLaunch, result: dict[str, Any]) -> None:
    path = Path(launch.result_file)
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(result), encoding="utf-8")
    partial.replace(path)


def main(launch_file: str) -> int:
    exit_with_parent(signal.SIGKILL)  # torchrun gone: nothing may keep running
    launch = RankLaunch.model_validate_json(Path(launch_file).read_text(encoding="utf-8"))
    rank = int(os.environ.get("RANK", "0"))
    from aift.threads import ThreadPlan, apply

    apply(ThreadPlan("job", launch.threads, 10))
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        format=f"%(asctime)s rank {rank} %(levelname)s %(message)s",
        stream=sys.stdout,
    )
    from aift.training.outputs import write_run_files
    from aift.training.trainer import fit, restore_inference_settings, setup

    config = launch.config
    examples = json.loads(Path(launch.examples_file).read_text(encoding="utf-8"))
    ctx = RankContext(launch, rank)
    ctx.progress(0.02, "loading the model and the data on every rank", force=True)
    prepared = setup(config, examples, Path(launch.model_dir))
    log.info("%d training rows on %s ranks", len(prepared.train_rows), os.environ.get("WORLD_SIZE"))
    started = time.monotonic()
    try:
        metrics = fit(ctx, config, prepared, wandb_project=launch.wandb_project)
    except Cancelled:
        if rank == 0:
            _write_result(launch, {"cancelled": True})
        return 0
    settings = config.distributed
    assert settings is not None
    metrics.update(
        {
            "strategy": settings.strategy,
            "world_size": settings.world_size,
            "runtime_seconds": time.monotonic() - started,
        }
    )
    ctx.progress(0.99, "saving the trained model…", force=True)
    restore_inference_settings(prepared.model)
    prepared.trainer.save_model(config.output_dir)  # every rank: FSDP gathers the shards
    if rank == 0:
        write_run_files(config, prepared.tokenizer, metrics)
        _write_result(launch, {"metrics": metrics})
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m aift.training.rank LAUNCH_FILE (started by torchrun)")
    sys.exit(main(sys.argv[1]))
