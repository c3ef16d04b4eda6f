"""Ollama's keep_alive: how long a model stays loaded after its last request.

Accepted as Ollama accepts it: a number of seconds, or a Go duration string ("5m",
"1h30m", "250ms", "1.5h"); negative means forever, 0 unloads after the request. aift
also takes a bare number in a string ("90") as seconds. Durations beyond ten years are
refused (use -1 for forever): they cannot be shown as an expiry date.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

from aift.errors import InvalidInput

MAX_KEEP_ALIVE_SECONDS = 10 * 365 * 24 * 3600.0
_UNIT = r"(?:ns|us|µs|μs|ms|s|m|h)"
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
# "default" (the server's setting), a Go duration, or a bare number of seconds.
DURATION_PATTERN = rf"^\s*(?:default|[+-]?(?:{_NUMBER}{_UNIT})+|[+-]?{_NUMBER})\s*$"
_COMPONENT = re.compile(rf"({_NUMBER})({_UNIT})")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_HINT = "use e.g. '5m', '1h30m', '30s', a number of seconds, 0 to unload or -1 for forever"


def _seconds_of(text: str) -> float:
    """Seconds of a duration string (Go syntax, or a bare number)."""
    value = text.strip()
    if not re.fullmatch(DURATION_PATTERN, value) or value == "default":
        raise InvalidInput(f"keep_alive {text!r} is not a duration; {_HINT}.")
    sign = -1.0 if value.startswith("-") else 1.0
    body = value.lstrip("+-")
    if re.fullmatch(_NUMBER, body):
        return sign * float(body)
    return sign * sum(float(n) * _UNIT_SECONDS[u] for n, u in _COMPONENT.findall(body))


def parse_keep_alive(value: str | int | float | None) -> float | None:
    """Seconds to stay loaded: None = forever (negative), 0 = unload after the request."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"keep_alive must be a duration, not true/false; {_HINT}.")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        seconds = _seconds_of(value)
    if math.isnan(seconds):
        raise InvalidInput(f"keep_alive must be a number or a duration; {_HINT}.")
    if seconds < 0:
        return None
    if seconds > MAX_KEEP_ALIVE_SECONDS:
        raise InvalidInput(
            f"keep_alive {value!r} is longer than ten years; use -1 to keep the model loaded."
        )
    return seconds


def _check(value: Any) -> Any:
    """Validate a request's keep_alive with one clear message; the value is kept as sent."""
    if value is None or (isinstance(value, str) and value.strip() == "default"):
        return value
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError(f"keep_alive must be a duration or a number of seconds; {_HINT}")
    if isinstance(value, str) and len(value) > 64:
        raise ValueError(f"keep_alive is too long to be a duration; {_HINT}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"keep_alive must be a finite number; {_HINT}")
    try:
        parse_keep_alive(value)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None
    return value


KEEP_ALIVE_JSON_SCHEMA = {
    "anyOf": [
        {"type": "string", "pattern": DURATION_PATTERN, "maxLength": 64},
        {"type": "number", "maximum": MAX_KEEP_ALIVE_SECONDS},
        {"type": "null"},
    ],
    "description": "How long the model stays loaded after the request: Go duration "
    "('5m', '1h30m'), seconds, 0 to unload, negative for forever, null for the default.",
}

KeepAlive = Annotated[
    str | int | float | None,
    BeforeValidator(_check),
    WithJsonSchema(KEEP_ALIVE_JSON_SCHEMA),
]
"""keep_alive as requests carry it (validated; parsed later by `parse_keep_alive`).
None is the server default in Ollama requests."""
