"""The arena's standings: records and Bradley–Terry ratings from votes."""

from __future__ import annotations

import pytest

from aift.evaluation.arena import standings


def by_model(votes: list[tuple[str, str, str]]) -> dict:
    return {s.model: s for s in standings(votes).standings}


def test_a_model_that_wins_every_battle_rates_highest_and_the_record_adds_up() -> None:
    votes = [("big", "small", "a"), ("small", "big", "b"), ("big", "mid", "a")]
    votes += [("mid", "small", "a"), ("mid", "small", "tie"), ("small", "mid", "both_bad")]
    table = by_model(votes)
    assert [s.model for s in standings(votes).standings] == ["big", "mid", "small"]
    assert (table["big"].wins, table["big"].losses, table["big"].ties) == (3, 0, 0)
    assert (table["mid"].wins, table["mid"].losses, table["mid"].ties) == (1, 1, 2)
    assert table["mid"].win_rate == pytest.approx((1 + 2 / 2) / 4)
    assert sum(s.battles for s in table.values()) == 2 * len(votes)
    assert standings(votes).votes == len(votes)


def test_ties_only_leave_everyone_average_and_few_votes_stay_near_the_middle() -> None:
    even = by_model([("x", "y", "tie"), ("y", "x", "both_bad")])
    assert even["x"].rating == pytest.approx(1000) and even["y"].rating == pytest.approx(1000)
    one = by_model([("x", "y", "a")])
    many = by_model([("x", "y", "a")] * 20)
    assert 1000 < one["x"].rating < many["x"].rating, "the prior shrinks a single vote"
    assert one["x"].rating - 1000 == pytest.approx(1000 - one["y"].rating, abs=1e-6)
    assert standings([]).standings == []
