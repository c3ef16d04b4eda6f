"""Logging: readable lines on the console, JSON lines in the workspace's logs/ folder.

Each process writes its own file (server.jsonl, worker.jsonl, jobs/<id>.jsonl), rotated
by size, so no two processes ever write one file. Every record carries the request id
(set by the HTTP middleware) and the job id (set by the worker and the job process), and
every line, console or file, passes through `redact`: configured secrets, bearer tokens,
passwords in URLs and `key=value` secrets never reach a log.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
job_id_var: ContextVar[str] = ContextVar("job_id", default="-")

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s%(job_tag)s] %(message)s"
ROTATE_BYTES = 10_000_000
ROTATE_KEEP = 5
MASK = "***"

# Secrets recognisable by shape, whatever their value.
# Each keeps its first and second groups around the masked part.
_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+()"),
    re.compile(
        r"(?i)(\b(?:api[_-]?key|token|password|passwd|secret)[\"']?\s*[=:]\s*[\"']?)"
        r"[^\s\"',&]+()"
    ),
    re.compile(r"(://[^/\s:@]*:)[^@\s/]+(@)"),
)
# Attributes every LogRecord has; anything else was passed with `extra=` and is kept.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "job_tag"}


class Redactor:
    """Masks secrets in log text: the configured ones by value, the rest by shape."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(rf"\1{MASK}\2", text)
        return text


class _ContextFilter(logging.Filter):
    """Adds the request and job ids of the current context to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        job_id = job_id_var.get()
        record.job_id = job_id
        record.job_tag = "" if job_id == "-" else f" job {job_id}"
        return True


class ReadableFormatter(logging.Formatter):
    """One line per record for people, secrets masked."""

    def __init__(self, fmt: str, redact: Redactor) -> None:
        super().__init__(fmt)
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per record for machines: time, level, logger, message, request
    and job ids, any `extra=` fields, the exception text; secrets masked."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": self.redact(record.getMessage()),
            "request_id": getattr(record, "request_id", "-"),
            "job_id": getattr(record, "job_id", "-"),
            "process": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:
                plain = isinstance(value, int | float | bool | None)
                entry[key] = value if plain else self.redact(str(value))
        if record.exc_info:
            entry["exception"] = self.redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


# Libraries that log each request at INFO (the MCP SDK: a session opened and closed for
# every stateless call); their warnings and errors still show.
CHATTY = (
    "mcp.server.streamable_http",
    "mcp.server.streamable_http_manager",
    "mcp.server.lowlevel.server",
)


def setup_logging(
    level: str,
    json_file: Path | None = None,
    *,
    fmt: str = FORMAT,
    secrets: Iterable[str] = (),
    console: logging.Handler | None = None,
) -> None:
    """Readable lines on the console (stderr unless `console` is given) and, when given,
    JSON lines in `json_file`, rotated by size; request/job ids added, `secrets` masked."""
    redact = Redactor(secrets)
    context = _ContextFilter()
    stream = console if console is not None else logging.StreamHandler()
    stream.setFormatter(ReadableFormatter(fmt, redact))
    handlers: list[logging.Handler] = [stream]
    if json_file is not None:
        json_file.parent.mkdir(parents=True, exist_ok=True)
        rotating = logging.handlers.RotatingFileHandler(
            json_file, maxBytes=ROTATE_BYTES, backupCount=ROTATE_KEEP, encoding="utf-8"
        )
        rotating.setFormatter(JsonFormatter(redact))
        handlers.append(rotating)
    for handler in handlers:
        handler.addFilter(context)
    logging.basicConfig(level=level, handlers=handlers, force=True)
    for name in CHATTY:  # their every-request INFO lines repeat the access log
        logging.getLogger(name).setLevel(logging.WARNING)


def secrets_of(settings: object) -> list[str]:
    """The values in settings that must never be logged: the API key, and passwords in
    the database, Redis and Qdrant URLs."""
    found = []
    key = getattr(settings, "api_key", None)
    if key is not None:
        found.append(key.get_secret_value())
    for name in ("database_url", "redis_url", "qdrant_url"):
        url = getattr(settings, name, None)
        match = re.search(r"://[^/\s:@]*:([^@\s/]+)@", url or "")
        if match:
            found.append(match.group(1))
    return found
