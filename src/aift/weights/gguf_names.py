"""The facts of llama.cpp's GGUF format that serving, export and the adapter converter
share: architecture names both ways, quantization types, and the rotary row order."""

from __future__ import annotations

from typing import Any

import numpy as np

from aift.errors import InvalidInput

# transformers architecture → llama.cpp architecture of the GGUF file.
GGUF_ARCHITECTURES = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "llama",
    "MixtralForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
}

# llama.cpp architecture of a GGUF file → the transformers architecture it was written from.
TRANSFORMERS_OF_GGUF = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}


# llama.cpp quantization types that need no importance matrix: name → LLAMA_FTYPE suffix.
GGUF_QUANTS = {
    "q8_0": "MOSTLY_Q8_0",
    "q6_k": "MOSTLY_Q6_K",
    "q5_k_m": "MOSTLY_Q5_K_M",
    "q5_k_s": "MOSTLY_Q5_K_S",
    "q5_1": "MOSTLY_Q5_1",
    "q5_0": "MOSTLY_Q5_0",
    "q4_k_m": "MOSTLY_Q4_K_M",
    "q4_k_s": "MOSTLY_Q4_K_S",
    "q4_1": "MOSTLY_Q4_1",
    "q4_0": "MOSTLY_Q4_0",
    "iq4_nl": "MOSTLY_IQ4_NL",
    "iq4_xs": "MOSTLY_IQ4_XS",
    "q3_k_l": "MOSTLY_Q3_K_L",
    "q3_k_m": "MOSTLY_Q3_K_M",
    "q3_k_s": "MOSTLY_Q3_K_S",
    "q2_k": "MOSTLY_Q2_K",
}


def gguf_architecture(config: dict[str, Any]) -> str:
    """llama.cpp's name of the model's architecture, or a user error naming those it takes."""
    names = config.get("architectures") or []
    arch = names[0] if names else config.get("model_type", "?")
    if arch not in GGUF_ARCHITECTURES:
        known = ", ".join(sorted(GGUF_ARCHITECTURES))
        raise InvalidInput(
            f"GGUF export takes {known}; this model is {arch}. Export it as AWQ "
            "(aift quantize) or serve it with the transformers engine."
        )
    if config.get("attention_bias") and GGUF_ARCHITECTURES[arch] == "llama":
        raise InvalidInput(f"{arch} with attention biases cannot be written as llama GGUF.")
    return GGUF_ARCHITECTURES[arch]


def rope_permute(weight: np.ndarray, heads: int) -> np.ndarray:
    """Reorder q/k projection rows from transformers' rotary layout (halves) to the
    interleaved pairs llama.cpp's llama graph expects."""
    rows = weight.shape[0]
    return (
        weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )
