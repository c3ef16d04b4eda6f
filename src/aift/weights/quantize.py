"""llama.cpp's quantizer, through llama-cpp-python's bindings: a float GGUF file to a
quantized one (export's last step)."""

from __future__ import annotations

import ctypes
from pathlib import Path

from aift.weights.gguf_names import GGUF_QUANTS


def quantize_gguf(source: Path, target: Path, quant: str, threads: int) -> None:
    """Quantize a float GGUF to `quant` with llama.cpp's quantizer (it streams tensors)."""
    from aift.native.llamacpp_backend import ensure_backend

    ensure_backend()
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_{GGUF_QUANTS[quant]}")
    params.nthread = max(1, threads)
    code = llama_cpp.llama_model_quantize(
        str(source).encode(), str(target).encode(), ctypes.byref(params)
    )
    if code != 0:
        raise RuntimeError(f"llama.cpp could not quantize {source.name} to {quant} (code {code}).")
