"""What long-running domain work reports to and asks: progress, live metrics, the time a
clean stop needs, whether to stop, and a log.

A job's context (`aift.jobs.context.JobContext`) and a rank of a distributed training
run (`aift.training.rank.RankContext`) both are one; domain code takes this protocol and
so never knows which runs it.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol


class Cancelled(Exception):
    """Raised inside long work once the user asked it to stop (`Work.check_cancelled`)."""


class Work(Protocol):
    """Progress, metrics, the time a clean stop needs, cancel, and a log."""

    log: logging.Logger

    def progress(self, fraction: float, message: str = "", *, force: bool = False) -> None:
        """Report progress (0–1) and a short message."""

    def metrics(self, values: dict[str, Any]) -> None:
        """Publish the latest live metrics (loss, learning rate, tokens/s…)."""

    def stop_needs(self, seconds: float) -> None:
        """Declare how long a clean stop (finish the unit in hand, save it) takes now."""

    def cancelled(self) -> bool:
        """Whether a stop was requested."""

    def check_cancelled(self) -> None:
        """Raise `Cancelled` when a stop was requested; call it between units of work."""
