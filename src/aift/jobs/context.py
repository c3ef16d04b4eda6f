"""What a job handler gets: its config, a place for checkpoints, progress and cancel.

A `JobContext` is a `aift.work.control.Work`: the domain code a handler calls takes it
as that protocol. The services a handler needs are not on the context: the handler
declares them as parameters and the job process hands them in (`aift.jobs.kinds`).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from aift.jobs.store import JobStore
from aift.store import utcnow
from aift.work.control import Cancelled


class JobContext:
    """The running job as seen from its handler (inside the job's own process):
    its id, config, attempt and folder, and the progress/cancel side of its row."""

    PROGRESS_MIN_INTERVAL = 0.2
    CANCEL_POLL_INTERVAL = 0.5
    STOP_BUDGET_REFRESH = 5.0

    def __init__(
        self,
        *,
        store: JobStore,
        job_id: str,
        kind: str,
        config: Any,
        attempt: int,
        work_dir: Path,
        logger: logging.Logger,
    ) -> None:
        self.store = store
        self.job_id = job_id
        self.kind = kind
        self.config = config
        self.attempt = attempt
        self.work_dir = work_dir
        self.log = logger
        self.cancel_event = threading.Event()
        self._last_progress_write = 0.0
        self._last_cancel_poll = 0.0
        self._stop_budget: tuple[float, float] | None = None  # (seconds, when written)

    @property
    def is_resume(self) -> bool:
        """True when an earlier attempt of this job ran (checkpoints may exist)."""
        return self.attempt > 1

    def progress(self, fraction: float, message: str = "", *, force: bool = False) -> None:
        """Report progress (0–1) and a short message; throttled to a few writes a second."""
        now = time.monotonic()
        if not force and now - self._last_progress_write < self.PROGRESS_MIN_INTERVAL:
            return
        self._last_progress_write = now
        fraction = min(1.0, max(0.0, float(fraction)))
        self.store.report(self.job_id, progress=fraction, message=message[:2000])
        if message:
            self.log.info("progress %.1f%% %s", fraction * 100, message)

    def metrics(self, values: dict[str, Any]) -> None:
        """Publish the latest live metrics (loss, learning rate, tokens/s…) of the job."""
        clean = {k: v for k, v in values.items() if isinstance(v, int | float | str | None)}
        self.store.report(self.job_id, metrics=clean)

    def stop_needs(self, seconds: float) -> None:
        """Declare that, if asked to stop from now on, this job needs `seconds` to stop
        cleanly (finish the unit of work in hand and save it).

        The supervisor then waits that long after a cancel before it kills the process,
        so a cancel never destroys a checkpoint the user asked to keep. Call it again
        whenever the estimate changes (e.g. after each step, before a save); repeated
        calls with a similar estimate are written at most every few seconds.
        """
        now = time.monotonic()
        seconds = max(0.0, float(seconds))
        if self._stop_budget is not None:
            previous, written = self._stop_budget
            similar = abs(seconds - previous) <= 0.1 * previous
            if similar and now - written < self.STOP_BUDGET_REFRESH:
                return
        self._stop_budget = (seconds, now)
        # + the refresh interval: a throttled estimate must not run out early.
        deadline = utcnow() + timedelta(seconds=seconds + self.STOP_BUDGET_REFRESH)
        self.store.report(self.job_id, stop_deadline_at=deadline)

    def cancelled(self) -> bool:
        """Whether a stop was requested (signal from the worker, or the flag in the DB)."""
        if self.cancel_event.is_set():
            return True
        now = time.monotonic()
        if now - self._last_cancel_poll >= self.CANCEL_POLL_INTERVAL:
            self._last_cancel_poll = now
            state = self.store.stop_state(self.job_id)
            if state is not None and state.cancel_requested:
                self.cancel_event.set()
        return self.cancel_event.is_set()

    def check_cancelled(self) -> None:
        """Raise Cancelled when a stop was requested; call it between units of work."""
        if self.cancelled():
            raise Cancelled()
