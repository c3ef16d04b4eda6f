"""Repeated searches with and without the search cache, on a real server.

One workspace holds a knowledge base of SQuAD paragraphs (the default embedding model);
the same server is started three times on it: cache off (AIFT_CACHE_TTL_SECONDS=0), the
in-process LRU (the default), and Redis (when redis-server is installed). Each run asks
50 SQuAD questions five times, round-robin (a team asking the same things), and reports
the latency of first and repeated searches. Writes "Search cache" in docs/benchmarks.md.

    python benchmarks/search_cache.py
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import ROOT, free_port, record, start, stop

SQUAD = ROOT.parent / "shared" / "data" / "retrieval" / "squad_v2_dev_sample.json"
PARAGRAPHS = 200
QUESTIONS = 50
ROUNDS = 5


def corpus() -> tuple[list[str], list[str]]:
    data = json.loads(SQUAD.read_text())["data"]
    paragraphs, questions = [], []
    for article in data:
        for paragraph in article["paragraphs"]:
            paragraphs.append(paragraph["context"])
            questions += [q["question"] for q in paragraph["qas"][:1]]
    return paragraphs[:PARAGRAPHS], questions[:QUESTIONS]


def serve(workspace: Path, log: Path, **env: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start(
        [sys.executable, "-m", "aift.cli", "serve", "--port", str(port)],
        f"{url}/healthz",
        env={"AIFT_WORKSPACE": str(workspace), "AIFT_OFFLINE": "1", **env},
        log=log,
        timeout=240,
    )
    return process, url


def build_kb(url: str, paragraphs: list[str]) -> str:
    kb = httpx.post(f"{url}/api/v1/kb", json={"name": "squad"}, timeout=120).json()["id"]
    files = [("files", (f"part{n}.txt", "\n\n".join(paragraphs[n::4]).encode())) for n in range(4)]
    job = httpx.post(f"{url}/api/v1/kb/{kb}/documents", files=files, timeout=300).json()
    while True:
        state = httpx.get(f"{url}/api/v1/jobs/{job['job_id']}", timeout=60).json()
        if state["status"] in ("succeeded", "failed"):
            assert state["status"] == "succeeded", state
            return kb
        time.sleep(1)


def workload(url: str, kb: str, questions: list[str]) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"first": [], "repeat": []}
    seen: set[str] = set()
    with httpx.Client(timeout=120) as client:
        client.post(f"{url}/api/v1/kb/{kb}/search", json={"query": "warm up the model"})
        for _ in range(ROUNDS):
            for question in questions:
                started = time.perf_counter()
                response = client.post(
                    f"{url}/api/v1/kb/{kb}/search", json={"query": question, "limit": 5}
                )
                elapsed = (time.perf_counter() - started) * 1000
                response.raise_for_status()
                timings["repeat" if question in seen else "first"].append(elapsed)
                seen.add(question)
    return timings


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    paragraphs, questions = corpus()
    scratch = Path(tempfile.mkdtemp(prefix="aift-cache-bench-"))
    workspace = scratch / "ws"
    process, url = serve(workspace, scratch / "build.log")
    try:
        kb = build_kb(url, paragraphs)
    finally:
        stop(process)
    configs = [("no cache", {"AIFT_CACHE_TTL_SECONDS": "0"}), ("in-process LRU", {})]
    redis_process = None
    if shutil.which("redis-server"):
        port = free_port()
        redis_process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
            stdout=subprocess.DEVNULL,
        )
        time.sleep(1)
        configs.append(("Redis", {"AIFT_REDIS_URL": f"redis://127.0.0.1:{port}/0"}))
    rows = []
    try:
        for name, env in configs:
            process, url = serve(workspace, scratch / f"{name}.log", **env)
            try:
                timings = workload(url, kb, questions)
            finally:
                stop(process)
            total = timings["first"] + timings["repeat"]
            rows.append(
                f"| {name} | {statistics.median(timings['first']):.1f} / "
                f"{pct(timings['first'], 0.95):.1f} | {statistics.median(timings['repeat']):.1f}"
                f" / {pct(timings['repeat'], 0.95):.1f} | {statistics.mean(total):.1f} |"
            )
            print(rows[-1], flush=True)
    finally:
        if redis_process is not None:
            redis_process.terminate()
    body = (
        f"{PARAGRAPHS} SQuAD paragraphs in one knowledge base (default embedding model, "
        f"hybrid search, 5 hits); {QUESTIONS} questions asked {ROUNDS} times each, "
        "round-robin, one client, over HTTP on loopback (latency includes HTTP and JSON).\n\n"
        "| cache | first search p50 / p95 ms | repeated search p50 / p95 ms | mean ms |\n"
        "|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
        "A repeat is served from the cache until the entry's TTL ends or the knowledge base "
        "changes (any upload, deletion or re-index bumps its generation counter). With the "
        "cache, a first search also embeds nothing new when the same question was asked "
        "against another knowledge base with the same model (the query-embedding cache)."
    )
    record("Search cache: repeated queries", body, "python benchmarks/search_cache.py")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
