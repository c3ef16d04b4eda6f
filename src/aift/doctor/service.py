"""The doctor's last report, kept for pages and /api/v1/system (the checks take seconds:
they decode and embed in child processes), refreshed in the background when stale."""

from __future__ import annotations

import logging
import threading
import time

from aift.config import Settings
from aift.doctor.checks import run_checks
from aift.doctor.schemas import DoctorReport
from aift.models.resolver import ModelResolver

log = logging.getLogger(__name__)

MAX_AGE_SECONDS = 600.0


class DoctorService:
    """Runs the machine checks now (`check`) or hands out the last report (`latest`)."""

    def __init__(self, settings: Settings, resolver: ModelResolver) -> None:
        self.settings = settings
        self.resolver = resolver
        self._report: DoctorReport | None = None
        self._taken_at = 0.0
        self._lock = threading.Lock()
        self._refreshing = False

    def check(self) -> DoctorReport:
        """Run every check now and keep the result."""
        report = run_checks(self.settings, self.resolver)
        with self._lock:
            self._report, self._taken_at = report, time.monotonic()
        return report

    def latest(self) -> DoctorReport | None:
        """The last report (None before the first one has finished); a stale or missing
        report is refreshed in a background thread, never in the caller's."""
        with self._lock:
            report = self._report
            stale = report is None or time.monotonic() - self._taken_at > MAX_AGE_SECONDS
            start = stale and not self._refreshing
            if start:
                self._refreshing = True
        if start:
            threading.Thread(target=self._refresh, daemon=True, name="doctor").start()
        return report

    def _refresh(self) -> None:
        try:
            self.check()
        except Exception:  # noqa: BLE001 - a failed check run must not kill the server
            log.exception("the machine checks failed")
        finally:
            with self._lock:
                self._refreshing = False
