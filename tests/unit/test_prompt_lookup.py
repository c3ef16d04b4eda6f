"""Prompt-lookup drafts: what followed the latest earlier occurrence of the last tokens."""

from __future__ import annotations

from aift.inference.prompt_lookup import draft


def test_the_latest_occurrence_of_the_longest_tail_gives_the_draft() -> None:
    history = [7, 1, 2, 3, 4, 5, 8, 1, 2, 3, 9, 6, 1, 2, 3]
    assert draft(history, 3) == [9, 6, 1]  # [1, 2, 3] last seen before the tail at 7
    assert draft(history, 1) == [9]
    assert draft([5, 1, 2, 6, 0, 2], 2) == [], "a lone repeated token is not a hint"
    assert draft([4, 1, 2, 9, 1, 2], 4) == [9, 1, 2], "a two-token tail when no longer one"


def test_no_draft_without_an_earlier_occurrence_or_room() -> None:
    assert draft([1, 2, 3, 4], 4) == []
    assert draft([1, 2], 4) == []
    assert draft([1, 2, 1, 2], 0) == []
    assert draft([3, 3, 3, 3], 4) == [3], "a run drafts what followed its earlier part"
