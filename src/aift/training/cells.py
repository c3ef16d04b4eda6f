"""Reading the cells of an uploaded row: texts (CSV and Parquet give NaN for empty cells)
and the chat roles every row format shares."""

from __future__ import annotations

from typing import Any

ROLES = {"system", "user", "assistant"}
SHAREGPT_ROLES = {
    "system": "system",
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
}


def cell_text(value: Any) -> str | None:
    """A cell as text; None when it is empty (missing or NaN)."""
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN from CSV/Parquet
        return None
    return str(value)
