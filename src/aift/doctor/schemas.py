"""One machine check and the report of all of them (CLI, /api/v1/system, dashboard)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field


class CheckStatus(StrEnum):
    ok = "ok"
    warn = "warn"  # works, but not as configured or not as well as it could
    fail = "fail"  # something the defaults (or the configuration) need is broken


class DoctorCheck(BaseModel):
    """One fact about this machine: ok, or what is wrong and the command that fixes it."""

    name: str = Field(..., description="What was checked, e.g. llama.cpp or ocr.")
    status: CheckStatus
    summary: str = Field(..., description="What was found, in one line.")
    fix: str | None = Field(None, description="The command or setting that fixes it.")
    details: dict[str, Any] = Field(default_factory=dict)


class DoctorReport(BaseModel):
    """Every check, and whether the defaults can run (no check failed)."""

    checks: list[DoctorCheck]
    ok: bool = Field(..., description="False when a check failed (aift doctor exits 1).")
    checked_at: datetime
    seconds: float
