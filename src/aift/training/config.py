"""One run configuration for fine-tuning, shared by the YAML file, the API, the UI and
the job."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


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
    lora: LoraSettings = Field(default_factory=LoraSettings)
    learning_rate: float = Field(2e-4, gt=0, le=1.0)
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = Field(0.03, ge=0.0, lt=1.0)
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
