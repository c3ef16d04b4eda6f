"""Distributed training: a run on several processes and machines, launched with torchrun.

The training job (on node 0) writes a launch file — the job config, the base model's
folder, the examples — and runs PyTorch's own launcher, `torchrun`, over
`aift.training.rank`. Every rank runs the same Trainer (DDP, FSDP or DeepSpeed ZeRO; the
strategy's settings are TrainingArguments); rank 0 writes progress events to a file the
job forwards to the UI, and the job's cancel reaches every rank through a flag file that
rank 0 reads and broadcasts, so all ranks stop at the same step after saving one
checkpoint. Other machines join with `aift train run.yaml --node-rank N` (the same
launcher, in the foreground) or the printed torchrun command.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from aift.allocator import without_jemalloc
from aift.errors import CapabilityMissing
from aift.procutil import popen_tied
from aift.training.schemas import DistributedSettings, TrainingJobConfig
from aift.work.control import Cancelled, Work

if TYPE_CHECKING:
    from aift.models.registry import ModelRegistry

DEEPSPEED_FILE = "deepspeed.json"
FOLDER = "distributed"
POLL_SECONDS = 0.5


class RankLaunch(BaseModel):
    """What every rank reads at start: the run and where to talk to the job."""

    config: TrainingJobConfig
    model_dir: str
    examples_file: str
    events_file: str
    cancel_file: str
    result_file: str
    threads: int
    wandb_project: str | None = None


def check_supported(settings: DistributedSettings, on_gpu: bool) -> None:
    """Refuse a strategy this machine cannot run, before any job starts."""
    if settings.strategy != "deepspeed":
        return
    if not on_gpu:
        raise CapabilityMissing(
            "DeepSpeed ZeRO needs CUDA GPUs; on this machine use strategy ddp or fsdp "
            "(both run on CPU processes)."
        )
    import importlib.util

    if importlib.util.find_spec("deepspeed") is None:
        raise CapabilityMissing("DeepSpeed is not installed: `pip install deepspeed`.")


def deepspeed_config(config: TrainingJobConfig, precision: str) -> dict[str, Any]:
    """A ZeRO-2/3 DeepSpeed config with every value taken from the run config."""
    settings = config.distributed
    assert settings is not None
    zero: dict[str, Any] = {
        "stage": settings.zero_stage,
        "overlap_comm": True,
        "contiguous_gradients": True,
        "reduce_bucket_size": 50_000_000,
    }
    if settings.zero_stage == 2:
        zero.update({"allgather_partitions": True, "allgather_bucket_size": 50_000_000})
    else:
        zero.update(
            {
                "stage3_prefetch_bucket_size": 50_000_000,
                "stage3_param_persistence_threshold": 100_000,
                "stage3_gather_16bit_weights_on_model_save": True,
            }
        )
    if settings.offload:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
        if settings.zero_stage == 3:
            zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    return {
        "train_micro_batch_size_per_gpu": config.batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation,
        "train_batch_size": config.batch_size * config.gradient_accumulation * settings.world_size,
        "gradient_clipping": 1.0,
        "bf16": {"enabled": precision == "bf16"},
        "fp16": {"enabled": precision == "fp16"},
        "zero_optimization": zero,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


def launch_command(settings: DistributedSettings, launch_file: Path, port: int) -> list[str]:
    """The torchrun command of this node (rank processes run `aift.training.rank`)."""
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nnodes={settings.nodes}",
        f"--nproc-per-node={settings.processes_per_node}",
        f"--node-rank={settings.node_rank}",
        f"--master-addr={settings.master_addr}",
        f"--master-port={port}",
        "-m",
        "aift.training.rank",
        str(launch_file),
    ]


def node_commands(config_file: Path, settings: DistributedSettings) -> list[str]:
    """What to run on each machine of a multi-node run (printed by `aift train`)."""
    lines = []
    for rank in range(settings.nodes):
        if rank == 0:
            lines.append(f"node 0 (this machine, runs the job): aift train {config_file}")
        else:
            lines.append(
                f"node {rank}: aift train {shlex.quote(str(config_file))} --node-rank {rank}"
            )
    return lines


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(
    config: TrainingJobConfig,
    examples: dict[str, list[dict]],
    model_dir: Path,
    threads: int,
    wandb_project: str | None,
) -> Path:
    """Write the launch file (and DeepSpeed config) into the output folder; its path."""
    import torch

    from aift.training.precision import choose_precision

    settings = config.distributed
    assert settings is not None
    output = Path(config.output_dir)
    folder = output / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    examples_file = folder / "examples.json"
    examples_file.write_text(json.dumps(examples), encoding="utf-8")
    if settings.strategy == "deepspeed":
        precision = choose_precision(config.precision, torch.cuda.is_available())
        (output / DEEPSPEED_FILE).write_text(
            json.dumps(deepspeed_config(config, precision), indent=2)
        )
    launch = RankLaunch(
        config=config,
        model_dir=str(model_dir),
        examples_file=str(examples_file),
        events_file=str(folder / "events.jsonl"),
        cancel_file=str(folder / "cancel"),
        result_file=str(folder / "result.json"),
        threads=max(1, threads // settings.processes_per_node),
        wandb_project=wandb_project,
    )
    for stale in (launch.events_file, launch.cancel_file, launch.result_file):
        Path(stale).unlink(missing_ok=True)
    path = folder / "launch.json"
    path.write_text(launch.model_dump_json(indent=2), encoding="utf-8")
    return path


def start(launch_file: Path, settings: DistributedSettings, log_file: Path) -> subprocess.Popen:
    """Start torchrun for this node (a free local port when the run has one node)."""
    port = _free_port() if settings.nodes == 1 else settings.master_port
    launch = RankLaunch.model_validate_json(launch_file.read_text(encoding="utf-8"))
    # ranks keep the system allocator: jemalloc is measured for single-process runs only
    env = {**without_jemalloc(dict(os.environ)), "OMP_NUM_THREADS": str(launch.threads)}
    handle = open(log_file, "ab")  # noqa: SIM115 - owned by the process
    # torchrun gets SIGTERM when the job process dies (even by SIGKILL) and stops its ranks
    return popen_tied(
        launch_command(settings, launch_file, port),
        sig=signal.SIGTERM,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


class EventReader:
    """Reads the events rank 0 appends, from where it stopped last time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        with open(self.path, encoding="utf-8") as handle:
            handle.seek(self.offset)
            text = handle.read()
        complete = text[: text.rfind("\n") + 1]  # a line being written waits for next time
        self.offset += len(complete.encode("utf-8"))
        return [json.loads(line) for line in complete.splitlines() if line.strip()]


def forward(ctx: Work, event: dict[str, Any]) -> None:
    """Pass one rank-0 event on to the job."""
    if "progress" in event:
        ctx.progress(event["progress"], event.get("message", ""), force=event.get("force", False))
    elif "metrics" in event:
        ctx.metrics(event["metrics"])
    elif "stop_needs" in event:
        ctx.stop_needs(event["stop_needs"])
    elif "log" in event:
        ctx.log.info("rank 0: %s", event["log"])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_distributed(
    ctx: Work,
    config: TrainingJobConfig,
    examples: dict[str, list[dict]],
    model_dir: Path,
    models: ModelRegistry,
    wandb_project: str | None,
) -> dict[str, Any]:
    """The job side of a distributed run: launch, relay progress and cancel, register."""
    from aift.threads import compute_threads
    from aift.training.outputs import register_output

    settings = config.distributed
    assert settings is not None
    launch_file = prepare(config, examples, model_dir, compute_threads(), wandb_project)
    launch = RankLaunch.model_validate_json(launch_file.read_text(encoding="utf-8"))
    log_file = Path(config.output_dir) / FOLDER / "ranks.log"
    ctx.progress(0.01, f"starting {settings.world_size} {settings.strategy} processes…", force=True)
    ctx.log.info("launching: %s", shlex.join(launch_command(settings, launch_file, 0)))
    process = start(launch_file, settings, log_file)
    events = EventReader(Path(launch.events_file))
    asked = False
    try:
        while process.poll() is None:
            for event in events.read():
                forward(ctx, event)
            if not asked and ctx.cancelled():
                asked = True
                Path(launch.cancel_file).touch()
                ctx.log.info("cancel passed to the ranks; they save a checkpoint and stop")
            time.sleep(POLL_SECONDS)
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=60)
    for event in events.read():
        forward(ctx, event)
    if process.returncode != 0:
        raise RuntimeError(
            f"the {settings.strategy} processes failed (exit {process.returncode}); "
            f"the end of {log_file}:\n{_tail(log_file)}"
        )
    result = json.loads(Path(launch.result_file).read_text(encoding="utf-8"))
    if result.get("cancelled"):
        raise Cancelled()
    metrics = result["metrics"]
    return register_output(models, config, metrics)


def run_node(
    config: TrainingJobConfig, examples: dict[str, list[dict]], model_dir: Path, threads: int
) -> int:
    """Join a multi-node run as node `node_rank` > 0, in the foreground; the exit code.

    Rank 0 (on node 0, the job) writes the output and checkpoints; this node's ranks train
    their share of every step. Its log is `distributed/ranks.log` in `output_dir`.
    """
    settings = config.distributed
    assert settings is not None
    launch_file = prepare(config, examples, model_dir, threads, None)
    log_file = Path(config.output_dir) / FOLDER / "ranks.log"
    process = start(launch_file, settings, log_file)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        return process.wait(timeout=60)
