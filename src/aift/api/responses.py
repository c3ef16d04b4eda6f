"""OpenAPI declarations of streamed responses, so the API document says what is sent."""

from __future__ import annotations

from typing import Any


def _streamed(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": description,
            "content": {media_type: {"schema": {"type": "string"}}},
        }
    }


SSE_RESPONSE = _streamed(
    "text/event-stream",
    "With `stream: true`: server-sent events (JSON in each `data:` line); otherwise JSON.",
)
NDJSON_RESPONSE = _streamed(
    "application/x-ndjson",
    "With `stream: true` (Ollama's default): one JSON object per line; otherwise JSON.",
)
