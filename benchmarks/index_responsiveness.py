"""Does the server stay responsive while its vector index works? A real server streams
chat answers (packaged SmolLM2 via llama.cpp) and answers /healthz while 20,000 chunks
are written into its index and optimized — against the same measures with nothing
being indexed, and against the obvious alternative of running the index engine in the
server's own process (a thread ticking beside an in-process HNSW build).

The chunks are put in the database exactly as an ingestion job leaves them (embedded,
waiting for the index), so the server's index syncer and index process do all the work.

Run: .venv/bin/python benchmarks/index_responsiveness.py [--chunks 20000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import httpx  # noqa: E402
import numpy as np  # noqa: E402
from common import free_port, record, start, stop  # noqa: E402

from aift.rag import keywords  # noqa: E402
from aift.rag.store import KnowledgeStore, pack_vector  # noqa: E402
from aift.store.db import Database  # noqa: E402
from aift.store.tables import ChunkRow, DocumentRow  # noqa: E402

MODEL = "SmolLM2-135M-Instruct"


class Probe:
    """Measures /healthz latency and the gaps between streamed chat tokens until stopped."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.health: list[float] = []
        self.gaps: list[float] = []
        self.stopped = threading.Event()

    def _health(self) -> None:
        with httpx.Client(timeout=60) as client:
            while not self.stopped.is_set():
                started = time.perf_counter()
                client.get(f"{self.url}/healthz").raise_for_status()
                self.health.append((time.perf_counter() - started) * 1000)
                time.sleep(0.02)

    def _chat(self) -> None:
        from openai import OpenAI

        client = OpenAI(base_url=f"{self.url}/v1", api_key="none", timeout=300)
        while not self.stopped.is_set():
            stream = client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "Tell me a long story about a river."}],
                max_tokens=64,
                temperature=0,
                stream=True,
            )
            last = None
            for event in stream:
                if not event.choices or not event.choices[0].delta.content:
                    continue
                now = time.perf_counter()
                if last is not None:
                    self.gaps.append((now - last) * 1000)
                last = now

    def run(self, until: threading.Event | float) -> None:
        threads = [threading.Thread(target=self._health), threading.Thread(target=self._chat)]
        for thread in threads:
            thread.start()
        if isinstance(until, threading.Event):
            until.wait()
        else:
            time.sleep(until)
        self.stopped.set()
        for thread in threads:
            thread.join()

    def summary(self) -> str:
        health = np.percentile(self.health, [50, 99])
        gaps = np.percentile(self.gaps, [50, 99])
        return (
            f"{health[0]:.1f} / {health[1]:.1f} / {max(self.health):.0f} | "
            f"{gaps[0]:.1f} / {gaps[1]:.1f} / {max(self.gaps):.0f} | {len(self.gaps)}"
        )


def pending_chunks(database_url: str, kb: dict, count: int) -> None:
    """One document of `count` embedded chunks, waiting for the index, as a job leaves it."""
    store = KnowledgeStore(Database(database_url))
    now = time.time()
    from datetime import UTC, datetime

    doc_id = uuid.uuid4().hex
    store.add_document(
        DocumentRow(
            id=doc_id,
            kb_id=kb["id"],
            name="synthetic.txt",
            content_type="text/plain",
            sha256=uuid.uuid4().hex,
            size_bytes=0,
            path="/nonexistent",
            status="indexing",
            timings={},
            created_at=datetime.fromtimestamp(now, UTC),
            updated_at=datetime.fromtimestamp(now, UTC),
        )
    )
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((200, kb["dimension"]))
    rows = []
    for n in range(count):
        vector = centres[n % 200] + 0.05 * rng.standard_normal(kb["dimension"])
        text = f"chunk {n} about topic {n % 200} " + " ".join(f"w{n % 977}" for _ in range(20))
        indices, values = keywords.document_vector(text)
        rows.append(
            ChunkRow(
                id=str(uuid.uuid4()),
                document_id=doc_id,
                kb_id=kb["id"],
                generation=kb["generation"],
                chunk_index=n,
                text=text,
                page_start=1,
                page_end=1,
                char_start=0,
                char_end=len(text),
                token_count=30,
                dense=pack_vector((vector / np.linalg.norm(vector)).tolist()),
                sparse={"indices": indices, "values": values},
                indexed=False,
            )
        )
    store.replace_chunks(doc_id, kb["generation"], rows)


def in_process_alternative(chunks: int) -> str:
    """A ticking thread beside an HNSW build in the same process (the engine in the
    server's process): the longest stall of the ticker."""
    from aift.rag.index import IndexPoint
    from aift.rag.index_edge import EdgeIndex

    rng = np.random.default_rng(1)
    centres = rng.standard_normal((200, 384))
    with tempfile.TemporaryDirectory() as folder:
        index = EdgeIndex(Path(folder))
        index.ensure("c", 384)
        for first in range(0, chunks, 1000):
            vectors = centres[np.arange(first, first + 1000) % 200] + 0.05 * rng.standard_normal(
                (1000, 384)
            )
            index.upsert(
                "c",
                [
                    IndexPoint(str(uuid.uuid4()), v.tolist(), [1], [1.0], {"document_id": "d"})
                    for v in vectors
                ],
            )
        gaps: list[float] = []
        done = threading.Event()

        def tick() -> None:
            last = time.perf_counter()
            while not done.is_set():
                time.sleep(0.01)
                now = time.perf_counter()
                gaps.append((now - last) * 1000 - 10)
                last = now

        ticker = threading.Thread(target=tick)
        ticker.start()
        started = time.perf_counter()
        while index.maintain():
            pass
        built = time.perf_counter() - started
        done.set()
        ticker.join()
        index.close()
    return (
        f"HNSW build of {chunks:,} points in the same process took {built:.1f} s; a thread "
        f"ticking every 10 ms meanwhile stalled up to {max(gaps):,.0f} ms (p99 "
        f"{np.percentile(gaps, 99):,.0f} ms)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=20_000)
    parser.add_argument("--idle-seconds", type=float, default=30)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="aift-responsive-"))
    workspace = folder / "ws"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start(
        [sys.executable, "-m", "aift.cli", "serve", "--port", str(port)],
        f"{url}/healthz",
        env={"AIFT_WORKSPACE": str(workspace), "AIFT_OFFLINE": "1"},
        log=folder / "server.log",
    )
    rows = [
        "| while | /healthz p50 / p99 / max ms | token gap p50 / p99 / max ms | tokens |",
        "|---|---|---|---|",
    ]
    try:
        kb = httpx.post(f"{url}/api/v1/kb", json={"name": "bench"}, timeout=300).json()
        quiet = Probe(url)
        quiet.run(args.idle_seconds)
        rows.append(f"| nothing is indexed | {quiet.summary()} |")
        print(rows[-1], flush=True)
        pending_chunks(f"sqlite:///{workspace}/metadata/aift.db", kb, args.chunks)
        started = time.perf_counter()
        indexed = threading.Event()

        def watch() -> None:
            while True:
                info = httpx.get(f"{url}/api/v1/kb/{kb['id']}", timeout=300).json()
                if info.get("points") == args.chunks and not info.get("index_backlog"):
                    indexed.set()
                    return
                time.sleep(0.5)

        threading.Thread(target=watch, daemon=True).start()
        busy = Probe(url)
        busy.run(indexed)
        took = time.perf_counter() - started
        rows.append(
            f"| {args.chunks:,} chunks are indexed and optimized ({took:.0f} s) | "
            f"{busy.summary()} |"
        )
        print(rows[-1], flush=True)
    finally:
        stop(server)
    rows += [
        "",
        "Alternative — the engine in the server's process: " + in_process_alternative(args.chunks),
    ]
    body = "\n".join(rows)
    record(
        "Server responsiveness while the vector index works",
        body,
        "python benchmarks/index_responsiveness.py",
    )
    print(body)


if __name__ == "__main__":
    main()
