"""The search cache: query embeddings and whole search results, kept for a while.

A repeated question (a dashboard refreshing, a team asking the same thing, an agent
retrying) skips the embedding model and the index. Two stores behind one interface: an
in-process LRU by default, Redis when `AIFT_REDIS_URL` is set (shared by every server
process and surviving restarts). Entries expire after `cache_ttl_seconds`.

Invalidation is by generation counter: every search key includes its knowledge base's
counter, and anything that changes what the knowledge base returns (chunks indexed,
documents or the base deleted, a re-index) bumps it; older entries are never read again
and age out. A cache that fails (Redis down) is a miss, never a failed search.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from aift.monitoring import metrics
from aift.rag.store import pack_vector, unpack_vector

log = logging.getLogger(__name__)

REDIS_PREFIX = "aift:cache:"


class CacheBackend(Protocol):
    """Where cached bytes live: get/set with a time to live, and per-scope counters."""

    name: str

    def get(self, key: str) -> bytes | None: ...
    def set(self, key: str, value: bytes, ttl_seconds: float) -> None: ...
    def generation(self, scope: str) -> int: ...
    def bump(self, scope: str) -> None: ...


class MemoryBackend:
    """A bounded least-recently-used map in this process, entries expiring by age."""

    name = "memory"

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._generations: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            expires, value = item
            if expires < time.monotonic():
                del self._items[key]
                return None
            self._items.move_to_end(key)
            return value

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        with self._lock:
            self._items[key] = (time.monotonic() + ttl_seconds, value)
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def generation(self, scope: str) -> int:
        with self._lock:
            return self._generations.get(scope, 0)

    def bump(self, scope: str) -> None:
        with self._lock:
            self._generations[scope] = self._generations.get(scope, 0) + 1

    def __len__(self) -> int:
        return len(self._items)


class RedisBackend:
    """Entries in Redis with SETEX (Redis expires them), counters with INCR."""

    name = "redis"

    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def get(self, key: str) -> bytes | None:
        value = self.client.get(REDIS_PREFIX + key)
        return value if isinstance(value, bytes) else None

    def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        self.client.set(REDIS_PREFIX + key, value, px=max(1, int(ttl_seconds * 1000)))

    def generation(self, scope: str) -> int:
        value = self.client.get(f"{REDIS_PREFIX}gen:{scope}")
        return int(value) if isinstance(value, bytes | str | int) else 0

    def bump(self, scope: str) -> None:
        self.client.incr(f"{REDIS_PREFIX}gen:{scope}")


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class SearchCache:
    """Query embeddings by (model, text) and search results by (knowledge base,
    generation, request); `ttl_seconds` 0 turns both off."""

    def __init__(self, backend: CacheBackend, ttl_seconds: float) -> None:
        self.backend = backend
        self.ttl_seconds = ttl_seconds

    @property
    def enabled(self) -> bool:
        return self.ttl_seconds > 0

    def _get(self, cache: str, key: str) -> bytes | None:
        try:
            value = self.backend.get(key)
        except Exception as exc:  # noqa: BLE001 - a cache outage is a miss
            log.warning("%s cache unavailable (%s); searching without it", cache, exc)
            value = None
        metrics.cache_lookups.labels(cache, "miss" if value is None else "hit").inc()
        return value

    def _set(self, key: str, value: bytes) -> None:
        try:
            self.backend.set(key, value, self.ttl_seconds)
        except Exception as exc:  # noqa: BLE001 - a cache outage only costs speed
            log.warning("cache write failed (%s)", exc)

    def query_vector(
        self, model: str, text: str, compute: Callable[[], list[float]]
    ) -> list[float]:
        """The embedding of a query, computed once per model and text while cached."""
        if not self.enabled:
            return compute()
        key = "qvec:" + _digest([model, text])
        found = self._get("query_embedding", key)
        if found is not None:
            return unpack_vector(found)
        vector = compute()
        self._set(key, pack_vector(vector))
        return vector

    def search(
        self, kb_id: str, request: dict[str, Any], compute: Callable[[], dict[str, Any]]
    ) -> tuple[dict[str, Any], bool]:
        """A search result (as JSON data) and whether it came from the cache. `request`
        must hold everything the result depends on besides the knowledge base's data."""
        if not self.enabled:
            return compute(), False
        key = f"search:{kb_id}:{self._generation(kb_id)}:{_digest(request)}"
        found = self._get("search", key)
        if found is not None:
            return json.loads(found), True
        result = compute()
        self._set(key, json.dumps(result).encode())
        return result, False

    def _generation(self, kb_id: str) -> int:
        try:
            return self.backend.generation(kb_id)
        except Exception:  # noqa: BLE001 - unreadable counter: the next read will miss
            return -1

    def invalidate(self, kb_id: str) -> None:
        """The knowledge base changed: no earlier search result of it is served again."""
        try:
            self.backend.bump(kb_id)
        except Exception as exc:  # noqa: BLE001 - entries still expire by TTL
            log.warning("could not invalidate the search cache of %s (%s)", kb_id, exc)


class CachedQueryEmbedder:
    """An embedding model whose single-query embeddings go through the cache."""

    def __init__(self, embedder: Any, model: str, cache: SearchCache) -> None:
        self.embedder = embedder
        self.model = model
        self.cache = cache

    def embed(self, texts: list[str], *, is_query: bool = False) -> list[list[float]]:
        if not is_query or len(texts) != 1:
            return self.embedder.embed(texts, is_query=is_query)
        text = texts[0]
        return [
            self.cache.query_vector(
                self.model, text, lambda: self.embedder.embed([text], is_query=True)[0]
            )
        ]


def open_cache(redis_url: str | None, ttl_seconds: float, max_entries: int) -> SearchCache:
    """The search cache on Redis when a URL is set, else in this process."""
    backend: CacheBackend = RedisBackend(redis_url) if redis_url else MemoryBackend(max_entries)
    return SearchCache(backend, ttl_seconds)
