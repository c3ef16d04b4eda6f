"""Combining dense and keyword results into one ranking.

Raw scores are not comparable (cosine around 0.7–1.0 for e5, BM25 unbounded and
shifting per query), so the weighted sum works on scores min-max normalised per query;
reciprocal rank fusion uses ranks only.

The floor of each scale is the lowest score the query gets in the searched chunks, not
the lowest among the candidates: for BM25 that is 0 (a chunk sharing no term), for
cosine the search finds it (see `aift.rag.retrieval`). Min-max over the candidates alone
stretches a flat dense ranking (every candidate within 0.02 of the best) to the full
[0, 1] range and lets an unsure method outvote a sure one; measured on KorQuAD this
costs 0.01 nDCG@10 (docs/benchmarks.md).
"""

from __future__ import annotations

RRF_K = 60


def min_max(scores: dict[str, float], floor: float | None = None) -> dict[str, float]:
    """Scores scaled to [0, 1] within this query: `floor` (default: the lowest score) →
    0, the best → 1 (all equal → all 1)."""
    if not scores:
        return {}
    high = max(scores.values())
    low = min(scores.values()) if floor is None else min(floor, *scores.values())
    if high - low < 1e-12:
        return {key: 1.0 for key in scores}
    return {key: (value - low) / (high - low) for key, value in scores.items()}


def weighted(
    dense: dict[str, float],
    keyword: dict[str, float],
    dense_weight: float,
    keyword_weight: float,
    *,
    dense_floor: float | None = None,
    keyword_floor: float | None = None,
) -> dict[str, float]:
    """Weighted sum of per-query normalised scores; a method that has no score for a hit
    adds 0."""
    dense_n = min_max(dense, dense_floor)
    keyword_n = min_max(keyword, keyword_floor)
    total = dense_weight + keyword_weight or 1.0
    return {
        key: (dense_weight * dense_n.get(key, 0.0) + keyword_weight * keyword_n.get(key, 0.0))
        / total
        for key in dense.keys() | keyword.keys()
    }


def reciprocal_rank(
    dense: dict[str, float],
    keyword: dict[str, float],
    dense_weight: float = 1.0,
    keyword_weight: float = 1.0,
) -> dict[str, float]:
    """Σ weight / (k + rank) over the methods that found the hit (ranks from 1)."""
    fused: dict[str, float] = {}
    for scores, weight in ((dense, dense_weight), (keyword, keyword_weight)):
        ranked = sorted(scores, key=lambda key: -scores[key])
        for rank, key in enumerate(ranked, start=1):
            fused[key] = fused.get(key, 0.0) + weight / (RRF_K + rank)
    return fused
