"""Which KV slot a new request takes and how much of its prompt it need not compute."""

from __future__ import annotations

import pytest

from aift.inference.engines.prefix_slots import MIN_SHARED_TOKENS, PrefixSlots, common_prefix

SYSTEM = list(range(100, 100 + 2 * MIN_SHARED_TOKENS))  # a shared system prompt


def test_common_prefix():
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([1, 2], [1, 2, 3]) == 2


def test_a_follow_up_continues_in_the_slot_that_holds_its_history():
    slots = PrefixSlots(2)
    first = slots.place(SYSTEM + [1, 2], None)
    assert (first.slot, first.source, first.shared, first.evict) == (0, None, 0, False)
    slots.ready(first.slot)
    slots.release(first.slot, SYSTEM + [1, 2, 7, 8])  # prompt + answer tokens fed back
    follow_up = SYSTEM + [1, 2, 7, 8, 9, 3]
    again = slots.place(follow_up, None)
    assert (again.slot, again.source, again.shared) == (0, None, len(SYSTEM) + 4)


def test_a_shared_prefix_is_copied_from_a_busy_slot_once_computed():
    slots = PrefixSlots(3)
    first = slots.place(SYSTEM + [1], None)
    early = slots.place(SYSTEM + [2], None)  # same batch: the first is not computed yet
    assert early.shared == 0 and early.source is None
    slots.ready(first.slot)
    slots.ready(early.slot)
    late = slots.place(SYSTEM + [3], None)
    assert late.source in (first.slot, early.slot) and late.slot == 2
    assert late.shared == len(SYSTEM)


def test_another_adapter_never_shares_and_the_whole_prompt_is_never_reused():
    slots = PrefixSlots(2)
    first = slots.place(SYSTEM, "lora-a")
    slots.ready(first.slot)
    other = slots.place(SYSTEM, None)
    assert other.shared == 0
    slots.ready(other.slot)
    slots.release(other.slot, SYSTEM)
    same = slots.place(SYSTEM, None)  # identical prompt: the last token is recomputed
    assert same.shared == len(SYSTEM) - 1 and same.slot == other.slot


def test_short_common_prefixes_are_not_worth_reusing():
    slots = PrefixSlots(2)
    first = slots.place([1] * (MIN_SHARED_TOKENS - 1) + [5, 6], None)
    slots.ready(first.slot)
    second = slots.place([1] * (MIN_SHARED_TOKENS - 1) + [7, 8], None)
    assert second.shared == 0 and second.source is None and second.slot == 1


def test_the_least_recently_used_idle_slot_is_emptied_when_none_is_free():
    slots = PrefixSlots(2)
    for prompt in ([1] * 40, [2] * 40):
        placed = slots.place(prompt, None)
        slots.ready(placed.slot)
        slots.release(placed.slot, prompt)
    assert slots.cached_tokens() == 80
    third = slots.place([3] * 40, None)
    assert (third.slot, third.evict, third.shared) == (0, True, 0)  # slot 0 was used first
    slots.ready(third.slot)
    slots.place([4] * 40, None)
    with pytest.raises(RuntimeError, match="busy"):
        slots.place([5] * 40, None)  # every slot busy: the scheduler never asks


def test_a_reset_empties_every_slot():
    slots = PrefixSlots(2)
    placed = slots.place([1] * 40, None)
    slots.release(placed.slot, [1] * 40)
    slots.reset()
    assert slots.cached_tokens() == 0 and slots.empty == [0, 1]


def test_a_prompt_admitted_with_a_longer_shared_one_waits_for_it():
    slots = PrefixSlots(3)
    first = slots.place(SYSTEM + [1], None)
    assert slots.waits_for_pending(SYSTEM + [2], None)  # the first is not computed yet
    slots.ready(first.slot)
    assert not slots.waits_for_pending(SYSTEM + [2], None)
    assert not slots.waits_for_pending([9] * 40, None)  # nothing shared: no reason to wait
    slots.reuse = False
    assert not slots.waits_for_pending(SYSTEM + [2], None)
