"""One machine shared by a chat user and a training run: chat time to first token and
training speed alone and together, under aift's thread budget (jobs niced, short
OpenMP spins, thread counts from one budget) against the naive setup (every process at
the same priority with spinning waits — what aift did before).

A real server per setup. Chat: the packaged SmolLM2 on llama.cpp, streamed through the
official openai client, one question every few seconds (a person reading the answers).
Training: a LoRA job on the packaged SmolLM2 (transformers) over 200 short rows, long
enough to outlast the measurement; its speed is the optimizer steps per second it makes
during each window, read from its job metrics.

Run: .venv/bin/python benchmarks/shared_machine.py [--window 45] [--chats 6]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import httpx  # noqa: E402
from common import free_port, record, start, stop  # noqa: E402

MODEL = "SmolLM2-135M-Instruct"
SETUPS = {
    "naive (equal priority, spinning waits)": {
        "AIFT_JOB_NICENESS": "0",
        "OMP_WAIT_POLICY": "ACTIVE",
    },
    "aift's thread budget": {},
}


def chat_once(url: str) -> float:
    """Seconds to the first streamed token of one short question."""
    from openai import OpenAI

    client = OpenAI(base_url=f"{url}/v1", api_key="none", timeout=300)
    started = time.perf_counter()
    first = None
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Name three rivers of Europe and one fact each."}],
        max_tokens=48,
        temperature=0,
        stream=True,
    )
    for event in stream:
        if first is None and event.choices and event.choices[0].delta.content:
            first = time.perf_counter() - started
    return first if first is not None else float("nan")


def chats(url: str, count: int, pause: float) -> list[float]:
    found = []
    for _ in range(count):
        found.append(chat_once(url))
        time.sleep(pause)
    return found


def step_rate(api: str, job: str, seconds: float, during: threading.Event | None = None) -> float:
    """Optimizer steps per second the job makes over `seconds` (or until `during` ends)."""

    def step() -> tuple[float, int]:
        info = httpx.get(f"{api}/jobs/{job}", timeout=60).json()
        return time.perf_counter(), int((info.get("metrics") or {}).get("step") or 0)

    start_time, first = step()
    deadline = start_time + seconds
    while time.perf_counter() < deadline and (during is None or not during.is_set()):
        time.sleep(1)
    end_time, last = step()
    return (last - first) / (end_time - start_time)


def start_training(api: str) -> str:
    """A long LoRA job, running steadily; returns its id."""
    rows = "\n".join(
        json.dumps(
            {
                "instruction": f"What is the code word of station {n}?",
                "output": f"The code word of station {n} is {'ABCDEFGH'[n % 8]}{n * 7919 % 1000}.",
            }
        )
        for n in range(200)
    ).encode()
    dataset = httpx.post(f"{api}/datasets", files={"file": ("s.jsonl", rows)}, timeout=300)
    dataset.raise_for_status()
    config = {
        "base_model": MODEL,
        "dataset": dataset.json()["dataset"]["id"],
        "max_steps": 5000,
        "batch_size": 2,
        "max_length": 128,
        "eval_steps": 100000,
        "name": "shared-machine",
    }
    job = httpx.post(f"{api}/training", json=config, timeout=300)
    job.raise_for_status()
    job_id = job.json()["id"]
    for _ in range(600):  # until it trains steadily (model loaded, a few steps done)
        metrics = httpx.get(f"{api}/jobs/{job_id}", timeout=60).json().get("metrics") or {}
        if (metrics.get("step") or 0) >= 5:
            return job_id
        time.sleep(1)
    raise RuntimeError("the training job did not start")


def measure(setup: dict, window: float, count: int, pause: float) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="aift-shared-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start(
        [sys.executable, "-m", "aift.cli", "serve", "--port", str(port)],
        f"{url}/healthz",
        env={"AIFT_WORKSPACE": str(folder / "ws"), "AIFT_OFFLINE": "1", **setup},
        log=folder / "server.log",
    )
    api = f"{url}/api/v1"
    try:
        chat_once(url)  # loads the chat model
        alone = chats(url, count, pause)
        job = start_training(api)
        solo_rate = step_rate(api, job, window)
        solo_tokens = (httpx.get(f"{api}/jobs/{job}").json()["metrics"] or {}).get(
            "tokens_per_second", float("nan")
        )
        done = threading.Event()
        together: list[float] = []

        def chat_user() -> None:
            together.extend(chats(url, count, pause))
            done.set()

        user = threading.Thread(target=chat_user)
        user.start()
        shared_rate = step_rate(api, job, 3600, during=done)
        user.join()
        httpx.post(f"{api}/jobs/{job}/cancel", timeout=60)
    finally:
        stop(server)
    return {
        "chat_alone": statistics.median(alone),
        "chat_shared": statistics.median(together),
        "train_alone": solo_rate,
        "train_shared": shared_rate,
        "tokens_alone": solo_tokens,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--window", type=float, default=45.0, help="Seconds of solo training.")
    parser.add_argument("--chats", type=int, default=6, help="Questions per measurement.")
    parser.add_argument("--pause", type=float, default=4.0, help="Seconds between questions.")
    args = parser.parse_args()
    rows = [
        "| setup | chat TTFT alone / with training (s) | ratio | training steps/s alone / "
        "with chat | kept | training tokens/s alone |",
        "|---|---|---|---|---|---|",
    ]
    for name, setup in SETUPS.items():
        got = measure(setup, args.window, args.chats, args.pause)
        rows.append(
            f"| {name} | {got['chat_alone']:.2f} / {got['chat_shared']:.2f} | "
            f"{got['chat_shared'] / got['chat_alone']:.1f}× | {got['train_alone']:.3f} / "
            f"{got['train_shared']:.3f} | {got['train_shared'] / got['train_alone']:.0%} | "
            f"{got['tokens_alone']:.0f} |"
        )
        print(rows[-1], flush=True)
    rows += [
        "",
        f"Chat: {args.chats} streamed questions, one every ~{args.pause:.0f} s after the "
        "previous answer (packaged SmolLM2-135M, llama.cpp, 48 tokens). Training: LoRA on "
        "the packaged SmolLM2-135M, batch 2 × 128 tokens. Goal: TTFT with training within 2× of alone, "
        "training keeping ≥ 40 % of its solo speed.",
    ]
    body = "\n".join(rows)
    record("One machine: chat and training together", body, "python benchmarks/shared_machine.py")
    print(body)


if __name__ == "__main__":
    main()
