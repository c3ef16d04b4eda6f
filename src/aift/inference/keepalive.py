"""Ollama's keep_alive: how long a model stays loaded after its last request."""

from __future__ import annotations

import re

from aift.errors import InvalidInput

_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_keep_alive(value: str | int | float | None) -> float | None:
    """Seconds to stay loaded: None = forever (negative), 0 = unload after the request.

    Accepts numbers (seconds) and duration strings such as "5m", "1h", "30s", "-1".
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInput("keep_alive must be a duration like '5m' or a number of seconds.")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(value)
        if not match:
            raise InvalidInput(
                f"keep_alive {value!r} is not a duration; use e.g. '5m', '1h', '30s', 0 or -1."
            )
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    return None if seconds < 0 else seconds
