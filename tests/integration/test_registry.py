"""The model registry reads real model files: transformers folders, PEFT adapters, GGUF."""

from __future__ import annotations

import shutil
from pathlib import Path

from aift.config import Settings
from aift.models.packaged import SMOLLM2
from aift.models.schemas import ModelFormat, ModelKind
from aift.runtime import Runtime


def test_adapters_and_gguf_files_are_registered_with_their_facts(
    settings: Settings, tiny_llama_dir: Path
) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    runtime = Runtime.start(settings)
    base = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    lora = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    adapter_dir = runtime.workspace.outputs / "lora_tiny_test"
    lora.save_pretrained(adapter_dir)
    gguf = SMOLLM2.locate()
    assert gguf is not None
    shutil.copy(gguf, runtime.workspace.models / "copy.gguf")

    models = {m.name: m for m in runtime.models.scan()}
    adapter = models["lora_tiny_test"]
    assert adapter.kind == ModelKind.adapter and adapter.format == ModelFormat.peft
    assert adapter.architecture == "LORA" and adapter.base_model == str(tiny_llama_dir)
    # 2 layers × (q_proj + v_proj) × (A + B) with r=4 on hidden size 64, kv dim 32.
    assert adapter.parameter_count == 2 * ((4 * 64 + 64 * 4) + (4 * 64 + 32 * 4))
    assert adapter.details["r"] == 4
    copied = models["copy.gguf"]
    assert copied.kind == ModelKind.gguf and copied.architecture == "llama"
    assert copied.dtype == "Q4_1" and copied.details["context_length"] == 8192
    (runtime.workspace.models / "copy.gguf").unlink()
    assert "copy.gguf" not in {m.name for m in runtime.models.scan()}
    assert "copy.gguf" not in {m.name for m in runtime.models.list()}
