"""Retrieval evaluation on SQuAD-format data: corpus = every paragraph, query = each
answerable question, relevant = the question's own paragraph. Reports recall@1/5/10,
MRR@10 and nDCG@10 for dense only, keyword only, hybrid (weighted and RRF) and hybrid +
re-rank, using the same search code as the server on a throwaway embedded Qdrant."""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aift.config import Settings
from aift.errors import InvalidInput
from aift.rag import keywords
from aift.rag.index import IndexPoint
from aift.rag.index_edge import EdgeIndex
from aift.rag.retrieval import Corpus, rank
from aift.rag.schemas import SearchRequest
from aift.threads import compute_threads

CUTOFF = 10
EMBED_BATCH = 32


def load_squad(path: Path) -> tuple[list[str], list[tuple[str, int]]]:
    """(paragraphs, [(question, index of its paragraph)]) of a SQuAD-format file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(f"{path} is not a SQuAD-format JSON file ({exc}).") from None
    paragraphs: list[str] = []
    questions: list[tuple[str, int]] = []
    for article in data:
        for paragraph in article.get("paragraphs", []):
            paragraphs.append(paragraph["context"])
            for qa in paragraph.get("qas", []):
                if not qa.get("is_impossible") and qa.get("question", "").strip():
                    questions.append((qa["question"], len(paragraphs) - 1))
    if not paragraphs or not questions:
        raise InvalidInput(f"{path} holds no paragraphs with answerable questions.")
    return paragraphs, questions


def metrics(ranks: list[int | None]) -> dict[str, float]:
    """Recall@1/5/10, MRR@10, nDCG@10 from the 1-based rank of each relevant paragraph."""
    n = len(ranks)

    def share(test: Callable[[int], bool]) -> float:
        return sum(1 for r in ranks if r is not None and test(r)) / n

    return {
        "recall@1": share(lambda r: r <= 1),
        "recall@5": share(lambda r: r <= 5),
        "recall@10": share(lambda r: r <= 10),
        "mrr@10": sum(1 / r for r in ranks if r is not None and r <= CUTOFF) / n,
        "ndcg@10": sum(1 / math.log2(r + 1) for r in ranks if r is not None and r <= CUTOFF) / n,
    }


class _CachedQueries:
    """The embedder, with query vectors computed once for all methods."""

    def __init__(self, embedder: Any) -> None:
        self._embedder = embedder
        self._cache: dict[str, list[float]] = {}
        self.dimension = embedder.dimension

    def embed(self, texts: list[str], *, is_query: bool = False) -> list[list[float]]:
        missing = [t for t in texts if t not in self._cache]
        if missing:
            for text, vector in zip(
                missing, self._embedder.embed(missing, is_query=True), strict=True
            ):
                self._cache[text] = vector
        return [self._cache[t] for t in texts]


def evaluate(
    path: Path,
    embedder: Any,
    reranker: Any,
    settings: Settings,
    *,
    max_questions: int | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """The metrics of every retrieval method on one SQuAD-format file."""
    paragraphs, questions = load_squad(path)
    if max_questions:
        questions = questions[:max_questions]
    with tempfile.TemporaryDirectory(prefix="aift-eval-") as folder:
        index = EdgeIndex(Path(folder), threads=compute_threads())
        try:
            index.ensure("eval", embedder.dimension)
            progress(f"embedding {len(paragraphs)} paragraphs")
            for first in range(0, len(paragraphs), EMBED_BATCH):
                batch = paragraphs[first : first + EMBED_BATCH]
                vectors = embedder.embed(batch, is_query=False)
                points = []
                for offset, (text, vector) in enumerate(zip(batch, vectors, strict=True)):
                    indices, values = keywords.document_vector(text)
                    number = first + offset
                    points.append(
                        IndexPoint(
                            id=f"00000000-0000-0000-0000-{number:012d}",
                            dense=vector,
                            keyword_indices=indices,
                            keyword_values=values,
                            payload={
                                "document_id": "corpus",
                                "page_start": number,
                                "page_end": number,
                                "chunk_index": number,
                                "text": text,
                            },
                        )
                    )
                index.upsert("eval", points)
            corpus = Corpus(index, "eval", _CachedQueries(embedder), {"corpus": path.name})
            methods: list[tuple[str, dict, Any]] = [
                ("dense", {"mode": "dense"}, None),
                ("keywords", {"mode": "keywords"}, None),
                ("hybrid 0.7/0.3", {"mode": "hybrid"}, None),
                ("hybrid rrf", {"mode": "hybrid", "fusion": "rrf"}, None),
            ]
            if reranker is not None:
                methods.append(("hybrid + rerank", {"mode": "hybrid"}, reranker))
            results = {}
            for name, options, method_reranker in methods:
                progress(f"{name}: {len(questions)} questions")
                ranks = []
                for question, relevant in questions:
                    request = SearchRequest(query=question, limit=CUTOFF, **options)
                    hits = rank(corpus, request, method_reranker)
                    order = [h.chunk_index for h in hits]
                    ranks.append(order.index(relevant) + 1 if relevant in order else None)
                results[name] = metrics(ranks)
        finally:
            index.close()
    return {
        "file": str(path),
        "paragraphs": len(paragraphs),
        "questions": len(questions),
        "embedding_model": getattr(embedder, "name", "?"),
        "reranker": getattr(reranker, "name", None),
        "methods": results,
    }
