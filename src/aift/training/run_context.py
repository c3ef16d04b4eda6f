"""What a training loop reports to and asks: a job's context, or a rank of a
distributed run (`aift.training.rank`)."""

from __future__ import annotations

import logging
from typing import Any, Protocol


class RunContext(Protocol):
    """Progress, metrics, the time a clean stop needs, cancel, and a log."""

    log: logging.Logger

    def progress(self, fraction: float, message: str = "", *, force: bool = False) -> None: ...

    def metrics(self, values: dict[str, Any]) -> None: ...

    def stop_needs(self, seconds: float) -> None: ...

    def cancelled(self) -> bool: ...
