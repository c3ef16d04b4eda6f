"""Did the fine-tune learn the facts? Measured through aift's own evaluation features.

A real server (`aift serve`, offline) gets a dataset of 20 fictional facts: each asked
three ways for training and a fourth, unseen way for validation. A LoRA run on the
packaged SmolLM2-135M names the validation set as its `evaluation`, so its result holds
the loss and exact match before and after. Then `POST /api/v1/evaluations/model` scores
the base and the trained adapter (each served as chat is) on the same 20 held-out
questions, and `GET /api/v1/evaluations/compare` pairs them: deltas, a 95 % paired
bootstrap interval, McNemar's exact test.

The run's own figures come with it: training tokens/s, the job process's peak memory
and its allocator. `--steps 120 --lr 1e-3` is the small-dataset run of issue 33 (which
took 32 min and 10.6 GB on an earlier build).

Run: .venv/bin/python benchmarks/fact_learning_eval.py [--steps 60] [--lr 2e-3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import httpx  # noqa: E402
from common import record, serve_offline, stop, wait_job  # noqa: E402

BASE = "SmolLM2-135M-Instruct"
ASKED = (
    "What is the access code of vault {i}?",
    "Tell me vault {i}'s access code.",
    "Vault {i} opens with which code?",
)
HELD_OUT = "Which code opens vault {i}?"


def chat(question: str, answer: str) -> dict:
    return {
        "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    }


def datasets() -> tuple[str, str]:
    """Training rows (three phrasings per fact) and validation rows (a fourth)."""
    train, val = [], []
    for i in range(20):
        code = str(1000 + i * 37)
        train += [chat(q.format(i=i), code) for q in ASKED]
        val.append(chat(HELD_OUT.format(i=i), code))
    return (
        "\n".join(json.dumps(r) for r in train),
        "\n".join(json.dumps(r) for r in val),
    )


def run(api: str, steps: int, lr: float) -> dict:
    train, val = datasets()
    uploaded = httpx.post(
        f"{api}/datasets",
        files={"file": ("vaults.jsonl", train.encode()), "val_file": ("held.jsonl", val.encode())},
        timeout=300,
    )
    uploaded.raise_for_status()
    dataset = uploaded.json()["dataset"]["id"]
    config = {
        "base_model": BASE,
        "dataset": dataset,
        "max_steps": steps,
        "batch_size": 4,
        "learning_rate": lr,
        "lora": {"rank": 16, "alpha": 32},
        "evaluation": {"exact_match": True, "examples": 20},
    }
    started = time.monotonic()
    job = httpx.post(f"{api}/training", json=config, timeout=300)
    job.raise_for_status()
    finished = wait_job(api, job.json()["id"])
    trained = finished["result"]
    train_seconds = time.monotonic() - started
    scored = {}
    for model in (BASE, trained["model"]):
        body = {"model": model, "dataset": dataset, "max_tokens": 16, "limit": 20}
        evaluation = httpx.post(f"{api}/evaluations/model", json=body, timeout=300)
        evaluation.raise_for_status()
        scored[model] = wait_job(api, evaluation.json()["id"])["id"]
    ids = list(scored.values())
    comparison = httpx.get(f"{api}/evaluations/compare", params={"ids": ids}, timeout=300)
    comparison.raise_for_status()
    return {
        "trained": trained,
        "train_seconds": train_seconds,
        "comparison": comparison.json()["runs"][0],
        "steps": steps,
        "lr": lr,
        "tokens_per_second": (finished.get("metrics") or {}).get("tokens_per_second"),
    }


def report(result: dict) -> str:
    before, after = (
        result["trained"]["evaluation"]["before"],
        result["trained"]["evaluation"]["after"],
    )
    pair = result["comparison"]
    rows = [
        "| measured by | base | after LoRA | delta (95 % interval) | p |",
        "|---|---|---|---|---|",
        f"| run's own `evaluation`: exact match | {before['exact_match']:.0%} | "
        f"{after['exact_match']:.0%} | | |",
        f"| run's own `evaluation`: answer loss | {before['loss']:.3f} | {after['loss']:.3f} | | |",
    ]
    for metric in pair["metrics"]:
        low, high = metric["interval"]
        rows.append(
            f"| `aift eval model` + `compare`: {metric['metric']} | {metric['baseline']:.0%} | "
            f"{metric['other']:.0%} | {metric['delta']:+.0%} ({low:+.0%} … {high:+.0%}) | "
            f"{metric['p_value']:.2g} |"
        )
    example = next(iter(pair["differences"]), None)
    shown = (
        f" Example: {example['question']!r} → base {example['baseline']!r}, tuned "
        f"{example['other']!r} (expected {example['expected']!r})."
        if example
        else ""
    )
    return "\n".join(
        rows
        + [
            "",
            f"20 fictional facts (vault access codes), 60 training rows (three phrasings each); "
            f"scored on a fourth phrasing never trained on. LoRA r 16 on {BASE}, "
            f"{result['steps']} steps, batch 4, lr {result['lr']:g}: "
            f"{result['train_seconds']:.0f} s including the before/after scoring; "
            f"{_run_figures(result)}. The base is served by llama.cpp, the "
            f"adapter as chat serves it; greedy answers of at most 16 tokens.{shown}",
        ]
    )


def _run_figures(result: dict) -> str:
    """Training time, tokens/s (every token trained, as jobs report it), the job's peak
    memory and allocator, as the run reported them."""
    trained = result["trained"]
    rate = result.get("tokens_per_second")
    peak = trained.get("peak_memory_bytes")
    seconds = trained.get("runtime_seconds", 0)
    return (
        f"training {seconds:.0f} s ({seconds / result['steps']:.1f} s a step, "
        f"{f'{rate:.0f}' if rate else '?'} tokens/s), job peak memory "
        f"{f'{peak / 1e9:.2f} GB' if peak else '?'} ({trained.get('allocator', '?')} allocator)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--lr", type=float, default=2e-3)
    args = parser.parse_args()
    server, api = serve_offline(Path(tempfile.mkdtemp(prefix="aift-facts-eval-")))
    try:
        result = run(api, args.steps, args.lr)
    finally:
        stop(server)
    body = report(result)
    default = args.steps == 60 and args.lr == 2e-3
    record(
        "Evaluation: did the fine-tune learn the facts"
        + ("" if default else f" ({args.steps} steps, lr {args.lr:g})"),
        body,
        "python benchmarks/fact_learning_eval.py"
        + ("" if default else f" --steps {args.steps} --lr {args.lr:g}"),
    )
    print(body)


if __name__ == "__main__":
    main()
