"""Load: 8 concurrent clients for 60 s on loopback, mixing streamed chats, searches and
document uploads against one real server; errors, p50/p95 per operation, and the
server's memory before and after. Writes "Load: 8 clients for 60 s" in docs/benchmarks.md.

    python benchmarks/load_test.py [--clients 8] [--seconds 60]

Each client picks its next operation at random (seeded): a streamed chat with the
packaged SmolLM2 (OpenAI API, 32 tokens) 40 %, a hybrid search 50 %, an upload of a
small document 10 % (accepted at once; its ingestion job runs in the worker). The
server is warmed up first (model loaded, one ingestion done), so "before" is its steady
state. The stated bound: the server process grows by less than 150 MB over the run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import openai
import psutil
from common import free_port, record, start, stop

MODEL = "SmolLM2-135M-Instruct"
RSS_BOUND_MB = 150
TOPICS = [
    "The harbour office of Veltmark opens at seven and sells ferry tickets to Orsa.",
    "Brannock grows a pear called the Winter Amber, harvested in late October.",
    "The bakery on Quill Street bakes rye bread with caraway in a beech-wood oven.",
    "The lighthouse of Skarn was lit in 1874 and burns paraffin from the mainland.",
    "The town council of Ellery meets on the first Monday of every month at noon.",
]
QUESTIONS = [
    "When does the harbour office open?",
    "Which pear grows in Brannock?",
    "What bread does the bakery bake?",
    "When was the lighthouse lit?",
    "When does the council meet?",
]


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = {}
        self.errors: dict[str, list[str]] = {}

    def add(self, name: str, ms: float) -> None:
        with self.lock:
            self.times.setdefault(name, []).append(ms)

    def fail(self, name: str, error: str) -> None:
        with self.lock:
            self.errors.setdefault(name, []).append(error[:200])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def chat(url: str, rec: Recorder, rng: random.Random) -> None:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="none", timeout=120, max_retries=0)
    started = time.perf_counter()
    first = None
    stream = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": rng.choice(QUESTIONS)}],
        max_tokens=32,
        stream=True,
    )
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = (time.perf_counter() - started) * 1000
    rec.add("chat: first token", first if first is not None else float("nan"))
    rec.add("chat: whole stream", (time.perf_counter() - started) * 1000)


def search(client: httpx.Client, url: str, kb: str, rec: Recorder, rng: random.Random) -> None:
    started = time.perf_counter()
    response = client.post(
        f"{url}/api/v1/kb/{kb}/search", json={"query": rng.choice(QUESTIONS), "limit": 5}
    )
    response.raise_for_status()
    rec.add("search", (time.perf_counter() - started) * 1000)


def upload(client: httpx.Client, url: str, kb: str, rec: Recorder, rng: random.Random) -> None:
    text = f"Note {rng.random()}: " + " ".join(rng.sample(TOPICS, 3))
    started = time.perf_counter()
    response = client.post(
        f"{url}/api/v1/kb/{kb}/documents",
        files=[("files", (f"note-{rng.randrange(10**9)}.txt", text.encode()))],
    )
    response.raise_for_status()
    rec.add("upload", (time.perf_counter() - started) * 1000)


def client_loop(url: str, kb: str, seed: int, until: float, rec: Recorder) -> None:
    rng = random.Random(seed)
    with httpx.Client(timeout=120) as client:
        while time.monotonic() < until:
            draw = rng.random()
            name = "chat" if draw < 0.4 else "search" if draw < 0.9 else "upload"
            try:
                if name == "chat":
                    chat(url, rec, rng)
                elif name == "search":
                    search(client, url, kb, rec, rng)
                else:
                    upload(client, url, kb, rec, rng)
            except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                rec.fail(name, f"{type(exc).__name__}: {exc}")


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 1e6


def wait_job(url: str, job_id: str) -> None:
    while httpx.get(f"{url}/api/v1/jobs/{job_id}", timeout=60).json()["status"] not in (
        "succeeded",
        "failed",
    ):
        time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="aift-load-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(
        [sys.executable, "-m", "aift.cli", "serve", "--port", str(port)],
        f"{url}/healthz",
        env={"AIFT_WORKSPACE": str(scratch / "ws"), "AIFT_OFFLINE": "1"},
        log=scratch / "server.log",
        timeout=240,
    )
    try:
        kb = httpx.post(f"{url}/api/v1/kb", json={"name": "towns"}, timeout=120).json()["id"]
        warm = httpx.post(
            f"{url}/api/v1/kb/{kb}/documents",
            files=[("files", ("towns.txt", "\n\n".join(TOPICS).encode()))],
            timeout=120,
        ).json()
        wait_job(url, warm["job_id"])
        rec = Recorder()
        rng = random.Random(0)
        chat(url, rec, rng)
        with httpx.Client(timeout=120) as client:
            search(client, url, kb, rec, rng)
        before = rss_mb(process.pid)
        rec = Recorder()
        until = time.monotonic() + args.seconds
        threads = [
            threading.Thread(target=client_loop, args=(url, kb, seed, until, rec))
            for seed in range(args.clients)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        after = rss_mb(process.pid)
        jobs = httpx.get(f"{url}/api/v1/jobs", params={"kind": "rag.ingest", "limit": 200}).json()
        statuses = [j["status"] for j in jobs["items"]]
        time.sleep(10)
        settled = rss_mb(process.pid)
    finally:
        stop(process)
    rows = []
    for name in ("chat: first token", "chat: whole stream", "search", "upload"):
        values = [v for v in rec.times.get(name, []) if v == v]
        rows.append(
            f"| {name} | {len(values)} | {statistics.median(values):.0f} | {pct(values, 0.95):.0f} |"
        )
    errors = sum(len(v) for v in rec.errors.values())
    error_lines = "".join(
        f"\n- {name}: {len(found)} × {found[0]}" for name, found in rec.errors.items()
    )
    body = (
        f"{args.clients} clients for {elapsed:.0f} s on loopback against one `aift serve` "
        "(embedded defaults, packaged SmolLM2-135M via llama.cpp, the default embedding model); each "
        "client picks a streamed chat (32 tokens, 40 %), a hybrid search (50 %) or an upload "
        "(10 %) at random, seeded.\n\n"
        "| operation | count | p50 ms | p95 ms |\n|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        f"Errors: {errors}{error_lines or ' (none)'}.  \n"
        f"Ingestion jobs from the uploads: {statuses.count('succeeded')} succeeded, "
        f"{statuses.count('failed')} failed, "
        f"{len(statuses) - statuses.count('succeeded') - statuses.count('failed')} still "
        "queued or running at the end (each runs in its own process, behind the requests).  \n"
        f"Server RSS: {before:.0f} MB before (warmed up), {after:.0f} MB after, {settled:.0f} MB "
        f"10 s later — growth {after - before:+.0f} MB (bound: < {RSS_BOUND_MB} MB)."
    )
    print(body)
    record(
        f"Load: {args.clients} clients for {args.seconds:.0f} s",
        body,
        "python benchmarks/load_test.py",
    )
    if errors or after - before >= RSS_BOUND_MB:
        sys.exit(1)


if __name__ == "__main__":
    main()
