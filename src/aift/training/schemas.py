"""Schemas of training datasets, shared by the API, the CLI, the UI and the jobs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class DatasetFormat(StrEnum):
    alpaca = "alpaca"  # instruction / input / output
    chat = "chat"  # messages: [{role, content}]
    sharegpt = "sharegpt"  # conversations: [{from, value}]
    text = "text"  # raw text for continued pre-training


class RowError(BaseModel):
    """Why one row of an upload cannot be used (rows count from 1)."""

    row: int
    reason: str


class TokenStats(BaseModel):
    """Token lengths of the rendered training examples, by the base model's tokenizer."""

    tokenizer: str
    examples: int
    min: int
    mean: float
    p50: int
    p95: int
    max: int
    over_max_length: int = Field(0, description="Examples longer than max_length.")
    max_length: int | None = None


class DatasetOptions(BaseModel):
    """How to read and split an uploaded dataset."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=120, description="Default: the file name.")
    format: DatasetFormat | None = Field(None, description="Default: detected from the rows.")
    val_ratio: float = Field(0.1, ge=0.0, lt=1.0, description="Share held out for validation.")
    seed: int = Field(42, description="Seed of the train/validation shuffle.")
    skip_invalid: bool = Field(False, description="Keep the valid rows instead of refusing.")
    base_model: str | None = Field(None, description="Tokenizer for previews and token stats.")
    max_length: int | None = Field(None, ge=16, le=131_072, description="Report longer rows.")


class DatasetInfo(BaseModel):
    """A stored training dataset."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    format: DatasetFormat
    source_file: str
    size_bytes: int
    sha256: str
    rows_train: int
    rows_val: int
    rows_skipped: int
    stats: dict = Field(default_factory=dict)
    created_at: datetime


class DatasetReport(BaseModel):
    """What an upload produced: the dataset, skipped-row errors and rendered previews."""

    dataset: DatasetInfo
    errors: list[RowError] = Field(default_factory=list)
    preview: list[str] = Field(default_factory=list)


class MergeRequest(BaseModel):
    """Fold an adapter into its base model as a new full model."""

    model_config = ConfigDict(extra="forbid")

    adapter: str = Field(..., min_length=1, description="Served name of the adapter.")
    name: str | None = Field(None, max_length=80, description="Name of the merged model.")
