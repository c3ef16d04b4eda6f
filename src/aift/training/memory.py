"""What a run needs in memory, before it starts: weights, adapter state, one pass.

A run holds the base's weights (in bf16 when an adapter run trains in bf16, see
`precision.base_dtype`), the trainable weights with their gradients and Adam moments,
and, for one forward pass at a time, the activations kept for its backward and the
logits at supervised positions. A pass holds at most `passes.CPU_PASS_TOKENS` tokens on
a CPU (packed rows are cut between examples), a whole batch on a GPU; so the memory
follows the tokens of a pass, not the dataset.

The per-token constants were measured on SmolLM2-135M with bf16 autocast (the tensors a
forward pass saves, counted with saved-tensor hooks): about 8 bytes per unit of the MLP's
width and 26 per unit of the hidden width, per layer and token. With the runtime (Python,
torch, the tokenizer) and a margin for the allocator and the backward's transients, the
estimate for the small-dataset run of docs/benchmarks.md is 1.65 GB against 1.69 GB
measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aift.training.passes import CPU_PASS_TOKENS
from aift.training.schemas import Method, Objective, TrainingConfig

RUNTIME_BYTES = 450 * 2**20  # Python, torch, transformers and the tokenizer, loaded
PER_INTERMEDIATE = 8  # activation bytes per MLP unit, layer and token (bf16)
PER_HIDDEN = 26  # activation bytes per hidden unit, layer and token (bf16)
MARGIN = 1.5  # what is allocated per pass: the allocator's slack, the backward's transients
TRAINABLE_STATE = 16  # bytes per trainable parameter: fp32 weight, gradient, 2 Adam moments
# Bytes per base parameter when its shape is unknown (the former rule of thumb).
FALLBACK_BYTES = {Method.full: 16, Method.lora: 4, Method.dora: 4, Method.qlora: 1}


@dataclass(frozen=True)
class ModelShape:
    """The widths that set a model's activation memory."""

    layers: int
    hidden: int
    intermediate: int
    vocab: int


def shape_of_config(config: dict[str, Any]) -> ModelShape | None:
    """The shape in a transformers config.json (None when it names no such widths)."""
    text = config.get("text_config") or config  # multimodal configs nest the language model
    try:
        hidden = int(text["hidden_size"])
        return ModelShape(
            layers=int(text["num_hidden_layers"]),
            hidden=hidden,
            intermediate=int(text.get("intermediate_size") or 4 * hidden),
            vocab=int(text["vocab_size"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


_FIELDS = ("layers", "hidden", "intermediate", "vocab")


def shape_of_summary(summary: dict[str, Any]) -> ModelShape | None:
    """The shape in a GGUF summary (`models.inspect.gguf_summary`), if it has one."""
    values = summary.get("shape") or {}
    if not all(isinstance(values.get(k), int) and values[k] > 0 for k in _FIELDS):
        return None
    return ModelShape(**{k: values[k] for k in _FIELDS})


def pass_tokens(config: TrainingConfig, on_gpu: bool) -> int:
    """Tokens one forward pass holds (see `trainer.micro_batches` and `passes`)."""
    if on_gpu:
        return config.batch_size * config.max_length
    if config.packing and config.objective == Objective.sft:
        return min(config.max_length, CPU_PASS_TOKENS)
    if config.objective in (Objective.dpo, Objective.orpo, Objective.simpo, Objective.reward):
        return 2 * config.max_length  # one preference pair: chosen and rejected
    return config.batch_size * config.max_length  # unpacked rows, KTO, GRPO: whole batches


def run_bytes(
    config: TrainingConfig, params: int, shape: ModelShape | None, bf16: bool, on_gpu: bool
) -> int:
    """Bytes the run needs, about; `bf16`: it trains in bf16 (its base held in bf16 when
    it trains an adapter)."""
    if shape is None:
        return int(params * FALLBACK_BYTES[config.method] * 1.3)
    if config.method == Method.full:
        weights, trainable = params * TRAINABLE_STATE, 0
    else:
        per_parameter = 0.6 if config.method == Method.qlora else (2 if bf16 else 4)
        weights = int(params * per_parameter)
        trainable = _adapter_params(config, shape) * TRAINABLE_STATE
    tokens = pass_tokens(config, on_gpu)
    width = PER_INTERMEDIATE * shape.intermediate + PER_HIDDEN * shape.hidden
    activations = tokens * shape.layers * width * (1 if bf16 else 2)
    supervised = 0.5 if config.loss_on == "assistant" else 1.0
    logits = int(tokens * supervised * shape.vocab * 4 * 2)  # fp32 logits and their gradient
    return int(RUNTIME_BYTES + weights + MARGIN * (trainable + activations + logits))


def _adapter_params(config: TrainingConfig, shape: ModelShape) -> int:
    """LoRA parameters with all-linear targets, about: rank × (inputs + outputs) of each
    adapted layer (q, k, v, o: hidden to hidden; gate, up, down: hidden to MLP width)."""
    per_layer = 8 * shape.hidden + 3 * (shape.hidden + shape.intermediate)
    return config.lora.rank * shape.layers * per_layer
