"""Choosing the next token from logits, and holding back text that may become a stop."""

from __future__ import annotations

import numpy as np

from aift.inference.schemas import SamplingParams


def sample_token(logits: np.ndarray, params: SamplingParams, rng: np.random.Generator) -> int:
    """Pick a token id: greedy at temperature 0, else temperature → top-k → top-p sampling."""
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
