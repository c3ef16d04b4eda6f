"""Schemas of what monitoring reports about the machine."""

from __future__ import annotations

from pydantic import BaseModel, Field


class DeviceInfo(BaseModel):
    """One compute device as the loading policy sees it."""

    kind: str = Field(..., pattern="^(cpu|cuda)$")
    index: int = 0
    name: str = ""
    total_memory_bytes: int
    supports_bf16: bool = False
