"""Re-ranking candidates with a sentence-transformers CrossEncoder.

The configured re-ranker (AIFT_DEFAULT_RERANKER, multilingual by default) is used when
its files can be found; when none can be had, search still works and says why re-ranking
was skipped, instead of failing.
"""

from __future__ import annotations

import logging
import threading

from aift.errors import AiftError, InvalidInput
from aift.models.resolver import ModelResolver
from aift.models.schemas import Purpose

log = logging.getLogger(__name__)


class Reranker:
    def __init__(self, name: str, path: str) -> None:
        from sentence_transformers import CrossEncoder

        self.name = name
        self._model = CrossEncoder(path, device="cpu")
        self._lock = threading.Lock()

    def score(self, query: str, texts: list[str]) -> list[float]:
        """Relevance of each text to the query (higher is better)."""
        if not texts:
            return []
        with self._lock:
            scores = self._model.predict([(query, t) for t in texts], batch_size=16)
        return [float(s) for s in scores]


class Rerankers:
    """Loads re-rankers once per process; remembers why one could not be had."""

    def __init__(self, resolver: ModelResolver) -> None:
        self.resolver = resolver
        self._loaded: dict[str, Reranker] = {}
        self._failed: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, ref: str | None) -> tuple[Reranker | None, str | None]:
        """(re-ranker, None) or (None, why it is skipped)."""
        ref = ref or self.resolver.default_ref(Purpose.reranker)
        with self._lock:
            if ref in self._loaded:
                return self._loaded[ref], None
            if ref in self._failed:
                return None, self._failed[ref]
            try:
                resolved = self.resolver.resolve(ref, purpose=Purpose.reranker)
                reranker = Reranker(resolved.name, resolved.path)
            except AiftError as exc:
                # said in full once, in the log; each response carries one short line
                log.warning("re-ranking skipped until %s is available: %s", ref, exc)
                self._failed[ref] = (
                    exc.message  # e.g. a path outside the model folders: say so
                    if isinstance(exc, InvalidInput)
                    else f"{ref} is not available (`aift models pull {ref}`)"
                )
                return None, self._failed[ref]
            except Exception as exc:  # noqa: BLE001 - a broken model must not break search
                log.warning("re-ranking skipped: %s could not be loaded (%s)", ref, exc)
                self._failed[ref] = f"{ref} could not be loaded (see the server log)"
                return None, self._failed[ref]
            self._loaded[ref] = reranker
            return reranker, None
