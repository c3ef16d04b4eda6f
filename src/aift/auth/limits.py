"""Failed sign-ins per client in a sliding minute: guessing the key by brute force
from one address is slowed to a handful of tries a minute."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0
MAX_CLIENTS = 10_000  # the table of recent failures never grows without bound


class AttemptLimiter:
    """Counts failures per key (a client address) over the last minute."""

    def __init__(self, per_minute: int, clock: Callable[[], float] | None = None) -> None:
        self.per_minute = per_minute
        self._clock = clock or time.monotonic
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] >= WINDOW_SECONDS:
            times.popleft()
        return times

    def retry_after(self, key: str) -> float | None:
        """Seconds until `key` may try again, or None when it may try now."""
        now = self._clock()
        with self._lock:
            times = self._recent(key, now)
            if len(times) < self.per_minute:
                return None
            return max(1.0, WINDOW_SECONDS - (now - times[0]))

    def failed(self, key: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) >= MAX_CLIENTS and key not in self._failures:
                self._failures.clear()  # a flood of addresses: start over, never grow
            self._recent(key, now).append(now)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
