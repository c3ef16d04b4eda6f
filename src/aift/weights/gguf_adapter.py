"""A PEFT LoRA adapter written as a GGUF LoRA adapter, which llama.cpp applies at run
time (serving an adapter of a GGUF model without merging it)."""

from __future__ import annotations

import json
from pathlib import Path

from aift.errors import InvalidInput
from aift.weights.gguf_names import gguf_architecture, rope_permute
from aift.weights.lora import lora_deltas


def adapter_to_gguf(adapter_dir: Path, target: Path, base_config: dict) -> int:
    """Write a PEFT LoRA adapter as a GGUF LoRA adapter for a llama/qwen2 base; return the
    number of adapted weights. DoRA and adapters of modules llama.cpp cannot adapt are
    refused with the reason."""
    import gguf
    import numpy as np

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
