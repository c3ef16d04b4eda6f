"""Choosing the next token from logits, and holding back text that may become a stop."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aift.inference.schemas import SamplingParams


def sample_token(
    logits: np.ndarray,
    params: SamplingParams,
    rng: np.random.Generator,
    previous: Sequence[int] = (),
) -> int:
    """Pick a token id: penalties for the `previous` (generated) tokens, then greedy at
    temperature 0, else temperature → top-k → top-p sampling."""
    logits = penalised(logits, params, previous)
    if params.temperature == 0.0:
        return int(np.argmax(logits))
    scores = logits.astype(np.float64) / params.temperature
    if params.top_k and params.top_k < scores.shape[0]:
        kth = np.partition(scores, -params.top_k)[-params.top_k]
        scores = np.where(scores >= kth, scores, -np.inf)
    order = np.argsort(-scores)
    sorted_scores = scores[order]
    probs = np.exp(sorted_scores - sorted_scores[0])
    probs /= probs.sum()
    if params.top_p < 1.0:
        keep = int(np.searchsorted(np.cumsum(probs), params.top_p) + 1)
        probs = probs[:keep] / probs[:keep].sum()
        order = order[:keep]
    return int(order[rng.choice(len(probs), p=probs)])


def penalised(logits: np.ndarray, params: SamplingParams, previous: Sequence[int]) -> np.ndarray:
    """The logits with the repetition, frequency and presence penalties applied (a copy;
    the same array when no penalty is set or nothing was generated)."""
    if not previous or (
        params.repetition_penalty == 1.0
        and params.frequency_penalty == 0.0
        and params.presence_penalty == 0.0
    ):
        return logits
    ids, counts = np.unique(np.asarray(previous, dtype=np.int64), return_counts=True)
    ids, counts = ids[ids < logits.shape[0]], counts[ids < logits.shape[0]]
    out = logits.astype(np.float64, copy=True)
    chosen = out[ids]
    if params.repetition_penalty != 1.0:
        chosen = np.where(
            chosen > 0, chosen / params.repetition_penalty, chosen * params.repetition_penalty
        )
    chosen -= counts * params.frequency_penalty + (counts > 0) * params.presence_penalty
    out[ids] = chosen
    return out


class StopMatcher:
    """Releases generated text except what could still turn into a stop sequence."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = stops
        self.pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Add new text; return (text safe to emit, whether a stop sequence was hit)."""
        self.pending += text
        for stop in self.stops:
            index = self.pending.find(stop)
            if index != -1:
                out, self.pending = self.pending[:index], ""
                return out, True
        hold = self._longest_partial_stop()
        cut = len(self.pending) - hold
        out, self.pending = self.pending[:cut], self.pending[cut:]
        return out, False

    def flush(self) -> str:
        """Text held back when generation ends without a stop."""
        out, self.pending = self.pending, ""
        return out

    def _longest_partial_stop(self) -> int:
        best = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(self.pending)), 0, -1):
                if self.pending.endswith(stop[:size]):
                    best = max(best, size)
                    break
        return best
