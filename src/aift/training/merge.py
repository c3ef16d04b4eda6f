"""Merging an adapter into its base: a new full model, with bounded memory.

LoRA weights are folded in one base shard at a time (W += alpha/r · B·A), so the merge
needs memory for one shard plus the adapter, never the whole model twice. DoRA, whose
merge rescales every column, goes through peft's own merge on CPU.
"""

from __future__ import annotations

import json
import logging
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from aift.errors import InvalidInput
from aift.jobs.context import JobContext
from aift.jobs.kinds import job_kind
from aift.training.schemas import MergeJobConfig, MergeRequest

log = logging.getLogger(__name__)

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


@job_kind("training.merge", config=MergeJobConfig)
def run_merge(ctx: JobContext, config: MergeJobConfig) -> dict[str, Any]:
    """Merge an adapter into its base."""
    from aift.models.schemas import ModelKind, ModelSource

    registry = ctx.runtime.models
    base_dir = registry.resolver.transformers_dir(config.base)
    adapter_dir, out_dir = Path(config.adapter_dir), Path(config.output_dir)
    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    ctx.progress(0.1, "merging", force=True)
    dora = json.loads((adapter_dir / "adapter_config.json").read_text()).get("use_dora")
    if dora:
        merge_with_peft(base_dir, adapter_dir, staging)
    else:
        merge_streaming(base_dir, adapter_dir, staging)
    for name in COPIED:
        source = adapter_dir / name if (adapter_dir / name).exists() else base_dir / name
        if source.exists() and not (staging / name).exists():
            shutil.copy(source, staging / name)
    staging.replace(out_dir)
    info = registry.register(
        out_dir.name,
        out_dir,
        source=ModelSource.workspace,
        kind=ModelKind.finetuned,
        extra={"merged_from": config.adapter, "base": config.base.name},
    )
    return {
        "model": info.name,
        "output_dir": str(out_dir),
        "method": "peft" if dora else "streaming",
    }


def output_for(workspace_outputs: Path, request: MergeRequest) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    from aift.workspace import safe_name

    return workspace_outputs / f"merged_{safe_name(request.name or request.adapter)}_{stamp}"
