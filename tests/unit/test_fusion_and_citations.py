"""Score fusion and the citation checker, on crafted inputs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from aift.rag.citations import check_citations
from aift.rag.fusion import min_max, reciprocal_rank, weighted
from aift.rag.schemas import SearchRequest


def test_min_max_scales_per_query() -> None:
    assert min_max({"a": 2.0, "b": 4.0, "c": 3.0}) == {"a": 0.0, "b": 1.0, "c": 0.5}
    assert min_max({"a": 5.0}) == {"a": 1.0}
    assert min_max({}) == {}


def test_weighted_sum_uses_normalised_scores_so_bm25_scale_does_not_dominate() -> None:
    dense = {"a": 0.91, "b": 0.90, "c": 0.70}  # e5-like: compressed near 1
    keyword = {"b": 40.0, "c": 10.0}  # BM25: unbounded
    fused = weighted(dense, keyword, 0.7, 0.3)
    assert fused["a"] == pytest.approx(0.7)  # best dense, no keyword match
    assert fused["b"] == pytest.approx(0.7 * (0.2 / 0.21) + 0.3)
    assert fused["c"] == pytest.approx(0.0)
    assert max(fused, key=fused.get) == "b"


def test_a_flat_dense_ranking_does_not_outvote_a_clear_keyword_match() -> None:
    dense = {"a": 0.86, "b": 0.85}  # nearly tied; the corpus floor is far below
    keyword = {"a": 1.0, "b": 10.0}  # b clearly matches the query's terms
    candidates_only = weighted(dense, keyword, 0.7, 0.3)
    assert max(candidates_only, key=candidates_only.get) == "a"  # a 0.01 gap became 1.0
    floored = weighted(dense, keyword, 0.7, 0.3, dense_floor=0.70, keyword_floor=0.0)
    assert floored["a"] == pytest.approx(0.7 * 1.0 + 0.3 * 0.1)
    assert floored["b"] == pytest.approx(0.7 * 0.15 / 0.16 + 0.3 * 1.0)
    assert max(floored, key=floored.get) == "b"


def test_min_max_floor_below_every_score_maps_to_zero() -> None:
    assert min_max({"a": 0.8, "b": 0.9}, floor=0.5) == pytest.approx({"a": 0.75, "b": 1.0})
    assert min_max({"a": 0.4, "b": 0.9}, floor=0.5)["a"] == 0.0  # a stale floor is clamped


def test_reciprocal_rank_fusion_rewards_agreement() -> None:
    fused = reciprocal_rank({"a": 0.9, "b": 0.8}, {"b": 5.0, "c": 4.0})
    assert max(fused, key=fused.get) == "b"
    assert fused["a"] == pytest.approx(1 / 61) and fused["c"] == pytest.approx(1 / 62)


def test_valid_citations_are_kept_in_first_use_order() -> None:
    check = check_citations("Paris is the capital [2]. It is large [1][2].", 3)
    assert check.answer == "Paris is the capital [2]. It is large [1][2]."
    assert check.cited == [2, 1] and check.invalid == [] and check.uncited == [3]


def test_citations_of_missing_sources_are_removed_and_reported() -> None:
    check = check_citations("It opened in 1889 [4]. Built of iron [1, 7].", 2)
    assert check.answer == "It opened in 1889. Built of iron [1]."
    assert check.cited == [1] and check.invalid == [4, 7] and check.uncited == [2]


def test_an_answer_without_citations_lists_every_source_as_uncited() -> None:
    check = check_citations("I do not know.", 2)
    assert check.cited == [] and check.uncited == [1, 2] and check.answer == "I do not know."


@pytest.mark.parametrize(
    "bad",
    [
        {"query": "   "},
        {"query": "x" * 2001},
        {"query": "q", "dense_weight": 0, "keyword_weight": 0},
        {"query": "q", "page_from": 5, "page_to": 2},
        {"query": "q", "limit": 0},
    ],
)
def test_bad_search_requests_are_refused(bad: dict) -> None:
    with pytest.raises(ValidationError):
        SearchRequest(**bad)
