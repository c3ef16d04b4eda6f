"""Quantities for people: byte counts as the CLI and the web pages print them."""

from __future__ import annotations


def human_size(num: float, decimals: int = 1) -> str:
    """Bytes in the largest unit under 1024 of it: `1.2 GB` (bytes never get decimals)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if num < 1024:
            return f"{num:.0f} {unit}" if unit == "B" else f"{num:.{decimals}f} {unit}"
        num /= 1024
    return f"{num:.{decimals}f} PB"
