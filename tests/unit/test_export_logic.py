"""The pure parts of export: pre-tokenizer names, rotary row order, Ollama names and
digests, quantization types."""

from __future__ import annotations

import numpy as np
import pytest

from aift.errors import InvalidInput
from aift.export.ollama_target import folder_name, parse_digest
from aift.export.schemas import BITS_PER_WEIGHT, QUANT_NAMES, ExportRequest
from aift.export.tokenizer_metadata import pre_tokenizer_name
from aift.inference.manager import names_model
from aift.models.schemas import ModelInfo
from aift.weights.gguf_names import gguf_architecture, rope_permute


def test_pre_tokenizers_are_named_from_the_tokenizers_own_rules() -> None:
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
    assert pre_tokenizer_name({"pre_tokenizer": byte_level}) == "gpt-2"
    digits = {"type": "Digits", "individual_digits": True}
    smollm = {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [digits, byte_level]}}
    assert pre_tokenizer_name(smollm) == "smollm"
    llama3 = {
        "type": "Split",
        "pattern": {"Regex": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"},
    }
    assert (
        pre_tokenizer_name({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [llama3]}})
        == "llama-bpe"
    )
    assert pre_tokenizer_name({"pre_tokenizer": None}) == "default"


def test_rope_permute_interleaves_the_two_halves_of_each_head() -> None:
    # one head of dimension 4: rows [a0, a1, b0, b1] (halves) → [a0, b0, a1, b1] (pairs)
    rows = np.arange(8, dtype=np.float32).reshape(4, 2)
    assert rope_permute(rows, heads=1)[:, 0].tolist() == [0.0, 4.0, 2.0, 6.0]
    two_heads = np.arange(16, dtype=np.float32).reshape(8, 2)
    assert rope_permute(two_heads, heads=2)[:, 0].tolist() == [0, 4, 2, 6, 8, 12, 10, 14]


def test_architectures_the_writer_does_not_take_are_named() -> None:
    assert gguf_architecture({"architectures": ["MistralForCausalLM"]}) == "llama"
    with pytest.raises(InvalidInput, match="GPT2LMHeadModel"):
        gguf_architecture({"architectures": ["GPT2LMHeadModel"]})


def test_quantization_types_are_checked_and_sized() -> None:
    assert ExportRequest(model="m", quant=" Q4_K_M ").quant == "q4_k_m"
    with pytest.raises(ValueError, match="unknown quantization"):
        ExportRequest(model="m", quant="q1_0")
    assert set(QUANT_NAMES) <= set(BITS_PER_WEIGHT)


def test_ollama_names_map_to_folders_and_back() -> None:
    assert folder_name("smol:latest") == "smol"
    assert folder_name("team/smol:v2") == "team-smol-v2"
    tricky = folder_name("../../etc:x")
    assert "/" not in tricky and ".." not in tricky
    model = ModelInfo(name="smol-v2", kind="gguf", format="gguf", source="workspace", path="/x")
    assert names_model(model, "smol:v2") and names_model(model, "SMOL-V2")
    plain = model.model_copy(update={"name": "smol"})
    assert names_model(plain, "smol:latest") and not names_model(plain, "smol:v2")


def test_digests_must_be_sha256() -> None:
    hex64 = "ab" * 32
    assert parse_digest(f"sha256:{hex64}") == hex64
    assert parse_digest(f"sha256-{hex64}") == hex64
    for bad in ("sha256:xyz", "md5:" + hex64, "../" + hex64, f"sha256:{hex64}/../x"):
        with pytest.raises(InvalidInput):
            parse_digest(bad)


def test_the_policys_8bit_and_4bit_choices_become_bitsandbytes_configs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    import torch

    from aift.errors import CapabilityMissing
    from aift.inference.engines.transformers import bitsandbytes_config

    if importlib.util.find_spec("bitsandbytes") is None:
        with pytest.raises(CapabilityMissing, match="bitsandbytes"):
            bitsandbytes_config("4bit", "bfloat16")
        real = importlib.util.find_spec
        monkeypatch.setattr(
            importlib.util,
            "find_spec",
            lambda name, *a: object() if name == "bitsandbytes" else real(name, *a),
        )
    eight = bitsandbytes_config("8bit", "float16")
    assert eight.load_in_8bit and not eight.load_in_4bit
    four = bitsandbytes_config("4bit", "bfloat16")
    assert four.load_in_4bit and four.bnb_4bit_quant_type == "nf4"
    assert four.bnb_4bit_compute_dtype == torch.bfloat16 and four.bnb_4bit_use_double_quant


def test_awq_group_sizes_must_divide_every_layers_input() -> None:
    from aift.export.awq import group_size_for

    smollm2 = {"hidden_size": 576, "intermediate_size": 1536, "num_attention_heads": 9}
    assert group_size_for(smollm2, None) == 64  # 128 does not divide 576
    assert group_size_for(smollm2, 32) == 32
    with pytest.raises(InvalidInput, match="use 64, 32, 16"):
        group_size_for(smollm2, 128)
    llama = {"hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32}
    assert group_size_for(llama, None) == 128
