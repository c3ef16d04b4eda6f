"""Which KV-cache slots hold which tokens, so a new request starts from a shared prefix.

A chat's turn N re-sends turns 1…N−1, and every question to a knowledge base starts with
the same system prompt and worked example. An engine with one KV slot per concurrent
sequence (llama.cpp's sequence ids) keeps a finished sequence's KV in its slot instead
of erasing it; a new prompt then either continues in the idle slot that shares its
longest prefix (the rest is trimmed), or takes a free slot and has the shared prefix
copied in from whichever slot holds it — an idle one or one still generating (llama.cpp
copies a slot's KV stream whole, ~47 MB for SmolLM2's 2,048 tokens, milliseconds against
the seconds of recomputing a long prefix).

The memory bound is the engine's own: slots × context tokens, allocated at load. Idle
slots keep their tokens until a new sequence needs a slot; the least recently used idle
slot is then emptied first. This module only does the bookkeeping; the engine moves
the KV.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

MIN_SHARED_TOKENS = 16  # shorter common prefixes are recomputed: not worth a copy


@dataclass
class SlotState:
    """Tokens whose KV a slot holds (in order, from position 0), and for which adapter."""

    tokens: list[int]
    adapter: str | None
    used: int = 0  # a tick of the last use, for least-recently-used eviction
    ready: bool = True  # False while a new sequence's prompt is still being computed


@dataclass(frozen=True)
class Placement:
    """Where a new sequence goes: its slot, the slot to copy its first `shared` tokens
    from (None: they are already in its own slot), and `shared`, the tokens not
    recomputed (0: prefill everything)."""

    slot: int
    source: int | None
    shared: int
    evict: bool  # the slot held another prefix that must be erased first


@dataclass
class PrefixSlots:
    """The state of an engine's slots: empty, idle (KV kept) or busy (generating)."""

    count: int
    reuse: bool = True  # False: every prompt is computed whole (AIFT_PREFIX_CACHE=false)
    empty: list[int] = field(default_factory=list)
    idle: dict[int, SlotState] = field(default_factory=dict)
    busy: dict[int, SlotState] = field(default_factory=dict)
    _clock: itertools.count = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.empty = list(range(self.count))

    def place(self, prompt: list[int], adapter: str | None) -> Placement:
        """A slot for a new sequence with the longest reusable prefix; the slot is busy
        from now on with the prompt's tokens (their KV is computed before the next
        placement reads it)."""
        source, shared = self._best_prefix(prompt, adapter)
        if source is not None and source in self.idle:
            slot, evict, source = source, False, None  # continue in place
        elif self.empty:
            slot, evict = self.empty.pop(0), False
        elif self.idle:
            slot = min(self.idle, key=lambda s: self.idle[s].used)
            evict = True
        else:
            raise RuntimeError("every slot is busy")  # the scheduler admits ≤ slots
        self.idle.pop(slot, None)
        self.busy[slot] = SlotState(list(prompt), adapter, next(self._clock), ready=False)
        return Placement(slot, source, shared, evict)

    def ready(self, slot: int) -> None:
        """The busy slot's prompt is computed: later placements may copy from it."""
        self.busy[slot].ready = True

    def waits_for_pending(self, prompt: list[int], adapter: str | None) -> bool:
        """Whether a prompt being computed right now (a request admitted in the same step)
        shares more with `prompt` than anything computed: then the engine computes the
        pending prompts first and this one copies their prefix."""
        if not self.reuse:
            return False
        _, computed = self._best_prefix(prompt, adapter)
        _, pending = self._best_prefix(prompt, adapter, ready=False)
        return pending > computed

    def _best_prefix(
        self, prompt: list[int], adapter: str | None, *, ready: bool = True
    ) -> tuple[int | None, int]:
        """The slot sharing the longest prefix with `prompt` (under the same adapter) and
        its length, capped so at least one prompt token is computed for its logits;
        among computed slots (`ready`), or among those still being computed."""
        best, longest = None, 0
        if not self.reuse:
            return None, 0
        limit = len(prompt) - 1
        for slot, state in [*self.idle.items(), *self.busy.items()]:
            if state.adapter != adapter or state.ready != ready:
                continue
            length = min(common_prefix(state.tokens, prompt), limit)
            if length > longest or (length == longest and length and slot in self.idle):
                best, longest = slot, length
        if longest < MIN_SHARED_TOKENS:
            return None, 0
        return best, longest

    def release(self, slot: int, tokens: list[int]) -> None:
        """A finished sequence's slot turns idle holding `tokens` (what was computed)."""
        state = self.busy.pop(slot)
        if tokens:
            self.idle[slot] = SlotState(list(tokens), state.adapter, next(self._clock))
        else:
            self.empty.append(slot)

    def reset(self) -> None:
        """Every slot's KV was erased (after a failed step): all are empty."""
        self.busy.clear()
        self.idle.clear()
        self.empty = list(range(self.count))

    def cached_tokens(self) -> int:
        """Tokens kept in idle slots (for memory reports)."""
        return sum(len(state.tokens) for state in self.idle.values())


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length
