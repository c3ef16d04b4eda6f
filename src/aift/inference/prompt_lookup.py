"""Draft tokens for speculative decoding, looked up in the text a sequence already has.

An answer that quotes its sources, a follow-up that repeats a name, an edited passage:
the next tokens often continue an n-gram that already occurred in the prompt or the
output. "Prompt lookup" takes the tokens that followed the most recent earlier
occurrence of the sequence's last n tokens as a draft; the engine then feeds the last
token and the draft in one decode and keeps the drafted tokens the model itself would
have chosen, up to the first it would not (`BatchingEngine._accept_rows`). Drafting costs
no model; a wrong draft costs only the extra positions of one decode.
"""

from __future__ import annotations

import numpy as np

MAX_NGRAM = 3  # the longest tail looked up; longer tails give surer drafts, found less often
MIN_NGRAM = 2  # a single repeated token is too weak a hint (measured: mostly rejected)


def draft(history: list[int], max_tokens: int) -> list[int]:
    """Up to `max_tokens` tokens that followed the latest earlier occurrence of the
    history's last `MAX_NGRAM`…`MIN_NGRAM` tokens (longest tail first); [] if none."""
    if max_tokens <= 0 or len(history) <= MIN_NGRAM:
        return []
    tokens = np.asarray(history, dtype=np.int64)
    for size in range(min(MAX_NGRAM, len(tokens) - 1), MIN_NGRAM - 1, -1):
        start = _latest_occurrence(tokens, size)
        if start is not None:
            follow = tokens[start + size : start + size + max_tokens]
            if follow.size:
                return [int(t) for t in follow]
    return []


def _latest_occurrence(tokens: np.ndarray, size: int) -> int | None:
    """Start of the latest occurrence of the last `size` tokens before the tail itself."""
    limit = len(tokens) - size  # occurrences must start before the tail does
    match = np.ones(limit, dtype=bool)
    for offset in range(size):
        match &= tokens[offset : offset + limit] == tokens[limit + offset]
    found = np.flatnonzero(match)
    return int(found[-1]) if found.size else None
