"""AWQ 4-bit quantization with llm-compressor: W4A16 weights in the compressed-tensors
format that vLLM loads (and transformers, for a check).

Calibration runs the model over the run's own data (a dataset's examples rendered with
the chat template) or a shipped sample, so the activation scales AWQ protects are the
ones the model sees in use. On CPU it works for small models, slowly; the job loads the
result back in transformers and generates from it before registering it.
"""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from aift.errors import CapabilityMissing, InvalidInput
from aift.export.gguf_writer import read_config
from aift.export.schemas import QuantizeJobConfig
from aift.export.sources import exportable, resolve_source
from aift.models.registry import ModelRegistry
from aift.work.actor import current_actor
from aift.work.control import Work

AWQ_ARCHITECTURES = {
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Qwen2ForCausalLM",
    "Qwen3ForCausalLM",
    "Phi3ForCausalLM",
    "Gemma2ForCausalLM",
}


GROUP_SIZES = (128, 64, 32, 16)


def input_sizes(config: dict[str, Any]) -> set[int]:
    """The input sizes of the linear layers AWQ quantizes (hidden, MLP, attention)."""
    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    head_dim = int(config.get("head_dim") or hidden // heads)
    return {hidden, int(config["intermediate_size"]), heads * head_dim}


def group_size_for(config: dict[str, Any], requested: int | None) -> int:
    """The group size to quantize with: `requested` when it divides every layer's input
    size, else (when none was asked for) the largest common one; a user error otherwise."""
    sizes = input_sizes(config)
    fits = [g for g in GROUP_SIZES if all(size % g == 0 for size in sizes)]
    if requested is None:
        if not fits:
            raise InvalidInput(f"No AWQ group size in {GROUP_SIZES} divides {sorted(sizes)}.")
        return fits[0]
    if any(size % requested for size in sizes):
        raise InvalidInput(
            f"group_size {requested} does not divide this model's layer sizes "
            f"{sorted(sizes)}; use {', '.join(map(str, fits)) or 'another size'}."
        )
    return requested


def require_llmcompressor() -> None:
    """Refuse early when llm-compressor is not installed (with how to get it)."""
    try:
        import llmcompressor  # noqa: F401
    except ImportError:
        raise CapabilityMissing(
            "AWQ needs llm-compressor: pip install --no-deps llmcompressor==0.14.0.1 "
            "auto-round==0.15.1 compressed-tensors==0.19.0 loguru (make setup does this)."
        ) from None


def shipped_calibration() -> list[dict[str, Any]]:
    """The calibration sample shipped with aift (chat turns and prose, in English)."""
    text = resources.files("aift.export").joinpath("calibration.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def calibration_texts(examples: list[dict[str, Any]], tokenizer: Any, samples: int) -> list[str]:
    """Calibration examples as the model reads them (chats through its chat template)."""
    texts = []
    for example in examples[:samples]:
        if "messages" in example and tokenizer.chat_template:
            texts.append(str(tokenizer.apply_chat_template(example["messages"], tokenize=False)))
        elif "messages" in example:
            texts.append("\n".join(m["content"] for m in example["messages"]))
        else:
            texts.append(str(example.get("text", "")))
    return [t for t in texts if t.strip()]


def _without_pinned_memory() -> None:
    """llm-compressor 0.14 pins CPU tensors for faster copies to an accelerator, which
    fails when there is none; on a CPU-only machine pinning gains nothing, so skip it."""
    import torch
    from llmcompressor.pipelines.cache import IntermediatesCache

    if not torch.accelerator.is_available():
        IntermediatesCache.pin_memory = lambda self, *args, **kwargs: None  # type: ignore[method-assign]


def quantize_awq(
    model_dir: Path,
    tokenizer_dir: Path,
    out_dir: Path,
    texts: list[str],
    *,
    group_size: int,
    max_seq_length: int,
) -> None:
    """Run AWQ (symmetric int4 weights, W4A16) over `texts` and save the
    compressed-tensors checkpoint to `out_dir`."""
    from datasets import Dataset
    from llmcompressor import oneshot
    from llmcompressor.modifiers.awq import AWQModifier
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _without_pinned_memory()
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype="auto")
    encoded = tokenizer(texts, truncation=True, max_length=max_seq_length)
    dataset = Dataset.from_dict(
        {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
    )
    recipe = AWQModifier(
        ignore=["lm_head"],
        config_groups={
            "group_0": {
                "targets": ["Linear"],
                "weights": {
                    "num_bits": 4,
                    "type": "int",
                    "symmetric": True,
                    "strategy": "group",
                    "group_size": group_size,
                },
            }
        },
    )
    oneshot(
        model=model,
        processor=tokenizer,  # type: ignore[arg-type]
        dataset=dataset,
        recipe=recipe,
        max_seq_length=max_seq_length,
        num_calibration_samples=len(texts),
    )
    model.save_pretrained(str(out_dir), save_compressed=True)
    tokenizer.save_pretrained(str(out_dir))


def generate_check(model_dir: Path, prompt: str = "The capital of France is") -> str:
    """Load a quantized checkpoint in transformers and generate a few greedy tokens."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir))
    inputs = tokenizer(prompt, return_tensors="pt")
    output = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    return str(
        tokenizer.decode(output[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    )


def quantize_to_awq(
    ctx: Work,
    config: QuantizeJobConfig,
    models: ModelRegistry,
    examples: list[dict] | None,
) -> dict[str, Any]:
    """Quantize a model to AWQ W4A16 (compressed-tensors) and register it; `examples`
    are the calibration dataset's rows (None: the shipped sample)."""
    from transformers import AutoTokenizer

    from aift.models.schemas import ModelKind, ModelSource
    from aift.weights.lora import COPIED, merge_streaming

    source = resolve_source(models, exportable(models, config.model))
    out_dir = Path(config.output_dir)
    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    merged = staging.with_name(staging.name + "-merged")
    try:
        weights = source.weights_dir
        if source.adapter_dir is not None:
            ctx.progress(0.05, "merging the adapter", force=True)
            merge_streaming(source.weights_dir, source.adapter_dir, merged)
            for name in COPIED:
                if (source.weights_dir / name).exists() and not (merged / name).exists():
                    shutil.copy(source.weights_dir / name, merged / name)
            weights = merged
        tokenizer = AutoTokenizer.from_pretrained(str(source.tokenizer_dir))
        rows = examples if examples is not None else shipped_calibration()
        texts = calibration_texts(rows, tokenizer, config.samples)
        ctx.check_cancelled()
        ctx.progress(0.15, f"calibrating AWQ on {len(texts)} samples", force=True)
        quantize_awq(
            weights,
            source.tokenizer_dir,
            staging,
            texts,
            group_size=group_size_for(read_config(weights), config.group_size),
            max_seq_length=config.max_seq_length,
        )
        ctx.check_cancelled()
        ctx.progress(0.9, "loading the result back in transformers", force=True)
        sample = generate_check(staging)
        staging.replace(out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(merged, ignore_errors=True)
    info = models.register(
        out_dir.name,
        out_dir,
        source=ModelSource.workspace,
        owner=current_actor.get().user_id,
        kind=ModelKind.finetuned,
        extra={"quantized_from": config.model, "quantization": f"awq-{config.scheme}"},
    )
    return {
        "model": info.name,
        "output_dir": str(out_dir),
        "scheme": config.scheme,
        "calibration_samples": len(texts),
        "size_bytes": info.size_bytes,
        "sample": sample,
    }
