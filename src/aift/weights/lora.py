"""LoRA weights as deltas of their base, and merging an adapter into its base with
bounded memory: shared by training (merge, MoE experts), export (GGUF, AWQ) and serving.

LoRA weights are folded in one base shard at a time (W += alpha/r · B·A), so the merge
needs memory for one shard plus the adapter, never the whole model twice. DoRA, whose
merge rescales every column, goes through peft's own merge on CPU.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from aift.errors import InvalidInput

COPIED = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
)


def lora_deltas(adapter_dir: Path) -> tuple[dict[str, tuple[Any, Any]], float]:
    """Per base weight name: its (A, B) matrices; and the LoRA scale alpha/r."""
    from safetensors.torch import load_file

    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    if config.get("use_dora"):
        raise InvalidInput("DoRA adapters merge through peft")  # handled by the caller
    rank, alpha = config["r"], config["lora_alpha"]
    scale = alpha / (rank**0.5 if config.get("use_rslora") else rank)
    weights = load_file(str(adapter_dir / "adapter_model.safetensors"))
    pairs: dict[str, list] = {}
    for key, tensor in weights.items():
        for part, slot in ((".lora_A.weight", 0), (".lora_B.weight", 1)):
            if key.endswith(part):
                module = key[: -len(part)].removeprefix("base_model.model.")
                pairs.setdefault(f"{module}.weight", [None, None])[slot] = tensor
    return {name: (a, b) for name, (a, b) in pairs.items()}, scale


def merge_streaming(base_dir: Path, adapter_dir: Path, out_dir: Path) -> int:
    """Write base + LoRA deltas shard by shard; return how many weights changed."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    deltas, scale = lora_deltas(adapter_dir)
    merged = 0
    out_dir.mkdir(parents=True, exist_ok=True)
    for shard in sorted(base_dir.glob("*.safetensors")):
        tensors = {}
        with safe_open(str(shard), framework="pt") as handle:
            metadata = handle.metadata()
            for key in handle.keys():
                tensor = handle.get_tensor(key)
                if key in deltas:
                    a, b = deltas[key]
                    tensor = (tensor.float() + scale * (b.float() @ a.float())).to(tensor.dtype)
                    merged += 1
                tensors[key] = tensor.contiguous()
        save_file(tensors, str(out_dir / shard.name), metadata=metadata or {"format": "pt"})
        del tensors
    if merged != len(deltas):
        raise InvalidInput(
            f"The adapter changes {len(deltas)} weights but only {merged} were "
            "found in the base model: is it the right base?"
        )
    for index in base_dir.glob("*.safetensors.index.json"):
        shutil.copy(index, out_dir / index.name)
    return merged


def merge_with_peft(base_dir: Path, adapter_dir: Path, out_dir: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir, low_cpu_mem_usage=True)
    model = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    model.save_pretrained(out_dir, safe_serialization=True)
