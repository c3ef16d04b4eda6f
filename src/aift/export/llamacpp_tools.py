"""llama.cpp's own tools, through llama-cpp-python's bindings: quantizing a GGUF file and
writing a PEFT LoRA adapter as a GGUF adapter llama.cpp applies at run time."""

from __future__ import annotations

import ctypes
import json
from pathlib import Path

from aift.errors import InvalidInput
from aift.export.schemas import GGUF_QUANTS


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


def adapter_to_gguf(adapter_dir: Path, target: Path, base_config: dict) -> int:
    """Write a PEFT LoRA adapter as a GGUF LoRA adapter for a llama/qwen2 base; return the
    number of adapted weights. DoRA and adapters of modules llama.cpp cannot adapt are
    refused with the reason."""
    import gguf
    import numpy as np

    from aift.export.gguf_writer import gguf_architecture, rope_permute
    from aift.training.merge import lora_deltas

    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    if config.get("use_dora"):
        raise InvalidInput("llama.cpp cannot apply DoRA adapters; merge the adapter first.")
    arch = gguf_architecture(base_config)
    deltas, scale = lora_deltas(adapter_dir)
    rank = int(config["r"])
    layers = int(base_config["num_hidden_layers"])
    model_arch = gguf.MODEL_ARCH.LLAMA if arch == "llama" else gguf.MODEL_ARCH.QWEN2
    names = gguf.get_tensor_name_map(model_arch, layers)
    heads = int(base_config["num_attention_heads"])
    kv_heads = int(base_config.get("num_key_value_heads") or heads)
    writer = gguf.GGUFWriter(str(target), arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    # llama.cpp scales B·A by alpha / rank: the alpha that gives PEFT's own scale.
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(scale * rank))
    for key, (a, b) in sorted(deltas.items()):
        name = names.get_name(key, try_suffixes=(".weight",))
        if name is None or a is None or b is None:
            raise InvalidInput(f"llama.cpp cannot apply a LoRA on {key}.")
        b_values = b.float().numpy()
        if arch == "llama" and key.endswith("self_attn.q_proj.weight"):
            b_values = rope_permute(b_values, heads)
        elif arch == "llama" and key.endswith("self_attn.k_proj.weight"):
            b_values = rope_permute(b_values, kv_heads)
        writer.add_tensor(f"{name}.lora_a", np.ascontiguousarray(a.float().numpy()))
        writer.add_tensor(f"{name}.lora_b", np.ascontiguousarray(b_values))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return len(deltas)
