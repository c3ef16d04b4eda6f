"""Pydantic schemas of export and quantization: what is asked, what a job runs, what it made."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from aift.weights.gguf_names import GGUF_QUANTS


class FloatType(StrEnum):
    """Unquantized GGUF types (written directly)."""

    f32 = "f32"
    f16 = "f16"
    bf16 = "bf16"


# Bits per weight of each type (for disk and memory estimates before work starts).
BITS_PER_WEIGHT = {
    "f32": 32.0,
    "f16": 16.0,
    "bf16": 16.0,
    "q8_0": 8.5,
    "q6_k": 6.6,
    "q5_k_m": 5.7,
    "q5_k_s": 5.5,
    "q5_1": 6.0,
    "q5_0": 5.5,
    "q4_k_m": 4.9,
    "q4_k_s": 4.6,
    "q4_1": 5.0,
    "q4_0": 4.5,
    "iq4_nl": 4.5,
    "iq4_xs": 4.3,
    "q3_k_l": 4.3,
    "q3_k_m": 3.9,
    "q3_k_s": 3.5,
    "q2_k": 3.4,
}
QUANT_NAMES = tuple(t.value for t in FloatType) + tuple(GGUF_QUANTS)


class ExportFormat(StrEnum):
    gguf = "gguf"


OllamaParameter = float | int | str | list[str]


class ExportRequest(BaseModel):
    """Export a model (base, fine-tune, adapter merged on the fly, MoE) as GGUF."""

    model: str = Field(..., description="A registered model: base, fine-tuned, adapter or GGUF.")
    format: ExportFormat = ExportFormat.gguf
    quant: str = Field("q8_0", description=f"One of: {', '.join(QUANT_NAMES)}.")
    name: str | None = Field(None, description="Name of the exported model (default: derived).")
    ollama: str | None = Field(
        None, description="Also create this model in the configured Ollama (AIFT_OLLAMA_URL)."
    )
    system: str | None = Field(None, description="SYSTEM prompt written into the Modelfile.")
    parameters: dict[str, OllamaParameter] = Field(
        default_factory=dict, description="Extra Modelfile PARAMETERs (temperature, num_ctx…)."
    )

    @field_validator("quant")
    @classmethod
    def _known_quant(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in QUANT_NAMES:
            raise ValueError(
                f"unknown quantization {value!r}; choose one of {', '.join(QUANT_NAMES)}"
            )
        return value


class ExportJobConfig(ExportRequest):
    """What the export job runs: the request plus the resolved files."""

    output_dir: str
    ollama_url: str | None = None


class TemplateCheck(BaseModel):
    """Whether the Modelfile TEMPLATE renders the probe conversations as the chat template."""

    passed: bool
    cases: int
    failure: str | None = None
    note: str | None = None


class ExportResult(BaseModel):
    """What an export produced."""

    model: str
    output_dir: str
    gguf_file: str
    quant: str
    size_bytes: int
    source_model: str
    template_check: TemplateCheck | None = None
    ollama_model: str | None = None
    ollama_reply: str | None = None


class QuantizeMethod(StrEnum):
    awq = "awq"


class QuantizeRequest(BaseModel):
    """Quantize a transformers model with llm-compressor (AWQ W4A16 → compressed-tensors)."""

    model: str
    method: QuantizeMethod = QuantizeMethod.awq
    # W4A16 symmetric: asymmetric checkpoints (packed zero points) of compressed-tensors
    # 0.19 do not load back in transformers 5.24, so they are not offered.
    scheme: Literal["W4A16"] = "W4A16"
    group_size: int | None = Field(
        None,
        ge=16,
        le=4096,
        description="Weights per scale; must divide every layer's input size (default: the "
        "largest of 128, 64, 32 that does).",
    )
    dataset: str | None = Field(
        None,
        description="Calibration dataset id (aift datasets list); default: the shipped sample.",
    )
    samples: int = Field(64, ge=1, le=4096, description="Calibration samples.")
    max_seq_length: int = Field(512, ge=16, le=32768)
    name: str | None = None


class QuantizeJobConfig(QuantizeRequest):
    """What the quantization job runs: the request plus where it writes."""

    output_dir: str
