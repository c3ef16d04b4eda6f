"""Search latency of the embedded vector index at 10k, 100k (and 1M) chunks, against
qdrant-client's local mode (the previous embedded store), and time to the first answer
token on CPU.

Synthetic chunks are clustered like real embeddings (uniform random vectors make HNSW
look bad and mean nothing): 384-d unit vectors around 2,000 topic centres, each chunk's
text drawn from its topic's vocabulary, so keyword and dense searches have real
neighbours. Points go into qdrant-edge in this process (fill, then the optimizer's HNSW
build, timed apart); queries then run through the index process — the path the server
uses, pipe included — with the same `rank()` as the server (dense + keywords + weighted
fusion, no re-ranking). HNSW recall@50 is measured against the engine's exact search.

Run: .venv/bin/python benchmarks/search_latency.py [--sizes 10000 100000] [--queries 50]
     [--local-size 5000] [--skip-answer]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np  # noqa: E402
from common import record  # noqa: E402

from aift.config import load_settings  # noqa: E402
from aift.rag import keywords  # noqa: E402
from aift.rag.index import IndexPoint, VectorIndex  # noqa: E402
from aift.rag.index_edge import EdgeIndex  # noqa: E402
from aift.rag.index_process import IndexProcess  # noqa: E402
from aift.rag.retrieval import Corpus, rank  # noqa: E402
from aift.rag.schemas import SearchRequest  # noqa: E402

DIM = 384
TOPICS = 2_000  # 100 subjects × 20 topics
SUBJECTS = 100
BATCH = 1_000


class Corpus384:
    """Clustered synthetic chunks and queries, reproducible from a seed."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        subjects = self.rng.standard_normal((SUBJECTS, DIM))
        subjects /= np.linalg.norm(subjects, axis=1, keepdims=True)
        centres = subjects[np.arange(TOPICS) % SUBJECTS] + 0.04 * self.rng.standard_normal(
            (TOPICS, DIM)
        )
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
        self.vocabulary = [f"t{t}w{w}" for t in range(TOPICS) for w in range(30)]

    def vectors(self, topics: np.ndarray, spread: float = 0.025) -> np.ndarray:
        noisy = self.centres[topics] + spread * self.rng.standard_normal((len(topics), DIM))
        return (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)

    def text(self, topic: int, words: int) -> str:
        own = self.rng.integers(0, 30, words // 2)
        other = self.rng.integers(0, len(self.vocabulary), words - words // 2)
        return " ".join([f"t{topic}w{w}" for w in own] + [self.vocabulary[int(w)] for w in other])

    def points(self, first: int, count: int) -> list[IndexPoint]:
        topics = self.rng.integers(0, TOPICS, count)
        vectors = self.vectors(topics).tolist()
        out = []
        for offset, topic in enumerate(topics):
            number = first + offset
            text = self.text(int(topic), 120)
            indices, values = keywords.document_vector(text)
            out.append(
                IndexPoint(
                    id=f"00000000-0000-0000-0000-{number:012d}",
                    dense=vectors[offset],
                    keyword_indices=indices,
                    keyword_values=values,
                    payload={
                        "document_id": f"d{number // 40}",
                        "page_start": number % 40 // 2 + 1,
                        "page_end": number % 40 // 2 + 1,
                        "chunk_index": number % 40,
                        "text": text,
                    },
                )
            )
        return out


class QueryEmbedder:
    """Query vectors near a topic centre, handed out in order (no model in the loop)."""

    dimension = DIM

    def __init__(self, corpus: Corpus384, topics: list[int]) -> None:
        self.vectors = corpus.vectors(np.asarray(topics), spread=0.03).tolist()
        self.next = 0

    def embed(self, texts: list[str], *, is_query: bool = False) -> list[list[float]]:
        out = self.vectors[self.next : self.next + len(texts)]
        self.next += len(texts)
        return out


def fill(index: VectorIndex, name: str, size: int, corpus: Corpus384) -> float:
    """Seconds to write `size` points (point construction excluded)."""
    index.ensure(name, DIM)
    spent = 0.0
    for first in range(0, size, BATCH):
        points = corpus.points(first, min(BATCH, size - first))
        started = time.perf_counter()
        index.upsert(name, points)
        spent += time.perf_counter() - started
    return spent


def build(index: EdgeIndex) -> float:
    """Seconds the optimizer takes to index everything written."""
    started = time.perf_counter()
    while index.maintain():
        pass
    return time.perf_counter() - started


def recall_at_50(index: EdgeIndex, name: str, corpus: Corpus384, queries: int) -> float:
    found = []
    for topic in corpus.rng.integers(0, TOPICS, queries):
        vector = corpus.vectors(np.asarray([topic]), spread=0.03)[0].tolist()
        approximate = {h.id for h in index.search_dense(name, vector, 50)}
        exact = {h.id for h in index.search_dense(name, vector, 50, exact=True)}
        found.append(len(approximate & exact) / max(1, len(exact)))
    return statistics.mean(found)


def latencies(
    index: VectorIndex, name: str, corpus: Corpus384, queries: int
) -> dict[str, tuple[float, float]]:
    results = {}
    for mode in ("dense", "keywords", "hybrid"):
        topics = [int(t) for t in corpus.rng.integers(0, TOPICS, queries)]
        embedder = QueryEmbedder(corpus, topics)
        search = Corpus(index, name, embedder, {f"d{n}": "synthetic" for n in range(30_000)})
        times = []
        for topic in topics:
            query = corpus.text(topic, 6)
            started = time.perf_counter()
            rank(search, SearchRequest(query=query, mode=mode, rerank=False, limit=10), None)
            times.append((time.perf_counter() - started) * 1000)
        results[mode] = percentiles(times)
    return results


def percentiles(times: list[float]) -> tuple[float, float]:
    times = sorted(times)
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)]


def embedding_ms(queries: int) -> tuple[float, float, str]:
    """p50/p95 of embedding one query with the workspace's default embedding model."""
    from aift.runtime import Runtime

    with tempfile.TemporaryDirectory() as folder:
        runtime = Runtime.start(load_settings(workspace=Path(folder), offline=True))
        try:
            runtime.models.scan()  # packaged models into the registry
            embedder, name, _ = runtime.knowledge.embedder_for(None)
            embedder.embed(["warm up"], is_query=True)
            times = []
            for n in range(queries):
                started = time.perf_counter()
                embedder.embed([f"what does clause {n} of the contract say"], is_query=True)
                times.append((time.perf_counter() - started) * 1000)
            return (*percentiles(times), getattr(embedder, "name", name))
        finally:
            runtime.close()


def local_mode(size: int, queries: int, corpus: Corpus384) -> tuple[float, dict]:
    """The previous embedded store (qdrant-client local mode) on the same data."""
    from aift.rag.index_server import QdrantServerIndex

    class LocalIndex(QdrantServerIndex):
        def __init__(self, path: str) -> None:
            import threading

            from qdrant_client import QdrantClient

            self.client = QdrantClient(path=path)
            self.lock = threading.RLock()

    with tempfile.TemporaryDirectory() as folder:
        index = LocalIndex(folder)
        filled = fill(index, "local", size, corpus)
        got = latencies(index, "local", corpus, queries)
        index.close()
    return filled, got


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--local-size", type=int, default=5_000, help="0: skip local mode")
    parser.add_argument("--skip-answer", action="store_true", help="Search figures only.")
    parser.add_argument(
        "--title",
        default="RAG search latency and time to first answer token",
        help="Section of docs/benchmarks.md to write (e.g. a separate one for 1M chunks).",
    )
    args = parser.parse_args()
    corpus = Corpus384()
    rows = [
        "| engine | chunks | fill s | HNSW build s | recall@50 | dense p50 / p95 ms "
        "| keyword p50 / p95 ms | hybrid p50 / p95 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    hybrid_p95: dict[int, float] = {}
    for size in args.sizes:
        folder = Path(tempfile.mkdtemp(prefix="aift-bench-index-"))
        try:
            edge = EdgeIndex(folder / "vector_index")
            filled = fill(edge, "bench", size, corpus)
            built = build(edge)
            recall = recall_at_50(edge, "bench", corpus, 30)
            edge.close()
            served = IndexProcess(load_settings(workspace=folder))
            got = latencies(served, "bench", corpus, args.queries)
            served.close()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        hybrid_p95[size] = got["hybrid"][1]
        rows.append(
            f"| qdrant-edge (index process) | {size:,} | {filled:.1f} | {built:.1f} | "
            f"{recall:.3f} | "
            + " | ".join(
                f"{got[m][0]:.1f} / {got[m][1]:.1f}" for m in ("dense", "keywords", "hybrid")
            )
            + " |"
        )
        print(rows[-1], flush=True)
    if args.local_size:
        filled, got = local_mode(args.local_size, min(args.queries, 20), corpus)
        rows.append(
            f"| qdrant-client local mode (before) | {args.local_size:,} | {filled:.1f} | – | "
            "exact | "
            + " | ".join(
                f"{got[m][0]:.1f} / {got[m][1]:.1f}" for m in ("dense", "keywords", "hybrid")
            )
            + " |"
        )
        print(rows[-1], flush=True)
    embed_p50, embed_p95, embed_name = embedding_ms(args.queries)
    largest = max(hybrid_p95)
    rows += [
        "",
        f"Query embedding ({embed_name}, one query): p50 {embed_p50:.0f} ms, p95 "
        f"{embed_p95:.0f} ms — so a hybrid search at {largest:,} chunks including the query "
        f"embedding takes about {embed_p95 + hybrid_p95[largest]:.0f} ms at p95 (sum of p95s).",
        "",
        "qdrant-edge keeps written points in an appendable segment (searched exactly) until "
        "the index process's optimizer builds HNSW over them, at most ~10k points per "
        "segment; 'HNSW build' is that work, done between requests in the index process. "
        "Fill excludes building the Python point objects.",
    ]
    if not args.skip_answer:
        from search_answer import time_to_first_token

        first_ms, search_ms = time_to_first_token()
        rows += [
            "",
            f"Time to the first answer token (packaged SmolLM2-135M via llama.cpp, default "
            f"embeddings, 5 sources from GeoTopo-komprimiert.pdf, model already loaded): "
            f"median {first_ms:.0f} ms, of which search {search_ms:.0f} ms.",
        ]
    body = "\n".join(rows)
    command = "python benchmarks/search_latency.py" + " ".join(
        [""] + [a for a in sys.argv[1:] if not a.startswith("--title")]
    )
    record(args.title, body, command)
    print(body)


if __name__ == "__main__":
    main()
