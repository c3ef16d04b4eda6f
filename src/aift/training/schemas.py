"""Schemas of training datasets, shared by the API, the CLI, the UI and the jobs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from aift.models.schemas import ResolvedModel


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


# the run config: one per fine-tuning run (YAML file, API, UI, job) ---------------
class Method(StrEnum):
    lora = "lora"
    dora = "dora"
    full = "full"
    qlora = "qlora"  # 4-bit base (bitsandbytes), GPU only


class Precision(StrEnum):
    auto = "auto"  # bf16 where the CPU or GPU computes it natively, else fp32
    bf16 = "bf16"
    fp16 = "fp16"
    fp32 = "fp32"


class LoraSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rank: int = Field(8, ge=1, le=1024)
    alpha: float = Field(16.0, gt=0)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: str | list[str] = Field(
        "all-linear", description="'all-linear' or module names such as q_proj, v_proj."
    )

    @field_validator("target_modules")
    @classmethod
    def _targets(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and (not value or any(not v.strip() for v in value)):
            raise ValueError("target_modules must name at least one module")
        return value


class TrainingConfig(BaseModel):
    """Everything a fine-tuning run needs; saved next to its output."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=80, description="Used in the output folder name.")
    base_model: str = Field(..., min_length=1, description="Model name, alias or path.")
    dataset: str = Field(..., min_length=1, description="Dataset id (aift datasets list).")
    method: Method = Method.lora
    lora: LoraSettings = Field(
        default_factory=LoraSettings,
        json_schema_extra={"applies_when": {"method": ["lora", "dora", "qlora"]}},
    )
    learning_rate: float = Field(2e-4, gt=0, le=1.0)
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = Field(
        0.03,
        ge=0.0,
        lt=1.0,
        description="Share of the steps spent warming the learning rate up.",
        json_schema_extra={
            "applies_when": {"lr_scheduler": ["linear", "cosine", "constant_with_warmup"]}
        },
    )
    weight_decay: float = Field(0.0, ge=0.0, le=1.0)
    epochs: float = Field(3.0, gt=0, le=1000)
    max_steps: int | None = Field(None, ge=1, description="Overrides epochs when set.")
    batch_size: int = Field(4, ge=1, le=1024)
    gradient_accumulation: int = Field(1, ge=1, le=1024)
    max_length: int = Field(1024, ge=16, le=131_072)
    packing: bool = Field(True, description="Pack several examples per row (no padding).")
    loss_on: Literal["assistant", "all"] = Field(
        "assistant", description="Train on assistant tokens only (chat data) or on all tokens."
    )
    seed: int = 42
    eval_steps: int | None = Field(None, ge=1, description="Validation loss interval.")
    save_steps: int | None = Field(None, ge=1, description="Checkpoint interval (default: epoch).")
    logging_steps: int = Field(1, ge=1)
    save_total_limit: int = Field(2, ge=1, le=100)
    precision: Precision = Precision.auto
    gradient_checkpointing: bool = False

    @model_validator(mode="after")
    def _coherent(self) -> TrainingConfig:
        if self.method == Method.full and self.lora != LoraSettings():
            raise ValueError("lora settings do not apply to full fine-tuning")
        return self


class TrainingJobConfig(TrainingConfig):
    """The run config plus what the service fixed at submission (so resume is exact)."""

    output_dir: str = Field(..., description="Absolute output folder, chosen at submission.")
    base: ResolvedModel = Field(..., description="Where the base model's files are.")

    @property
    def base_name(self) -> str:
        return self.base.name


class MergeJobConfig(MergeRequest):
    adapter_dir: str
    base: ResolvedModel
    output_dir: str


class TrainingEstimate(BaseModel):
    """What a run config will cost, before it starts: memory, steps and a time guess."""

    parameters: int = Field(..., description="Parameters of the base model.")
    memory_bytes: int = Field(..., description="RAM (or GPU memory) the run needs, about.")
    memory_available_bytes: int = Field(..., description="What this machine can give it.")
    fits: bool
    steps: int = Field(..., description="Optimizer steps of the whole run.")
    tokens: int = Field(..., description="Training tokens processed, about.")
    tokens_per_second: float | None = None
    seconds: float | None = Field(None, description="Expected duration, about.")
    basis: str = Field(..., description="Where the time guess comes from.")
    warnings: list[str] = Field(default_factory=list)


class CurvePoint(BaseModel):
    """One logged step of a run: training or validation figures (whichever were logged)."""

    step: int
    epoch: float | None = None
    loss: float | None = None
    eval_loss: float | None = None
    learning_rate: float | None = None
    grad_norm: float | None = None


class TrainingCurve(BaseModel):
    """A run's logged history, for its charts (points after `after` only, when asked)."""

    job_id: str
    points: list[CurvePoint]
