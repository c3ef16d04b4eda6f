"""How requests map onto vLLM and Ollama, tested without a GPU or an Ollama server."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from aift.errors import CapabilityMissing
from aift.inference.engines import ollama as ol
from aift.inference.engines import vllm
from aift.inference.schemas import FinishReason, SamplingParams


def test_vllm_sampling_mapping() -> None:
    params = SamplingParams(
        temperature=0.3, top_p=0.8, top_k=0, stop=["###"], seed=4, repetition_penalty=1.1
    )
    assert vllm.sampling_kwargs(params, 77) == {
        "temperature": 0.3,
        "top_p": 0.8,
        "top_k": -1,
        "max_tokens": 77,
        "stop": ["###"],
        "seed": 4,
        "repetition_penalty": 1.1,
        "frequency_penalty": 0.0,
        "presence_penalty": 0.0,
    }
    assert vllm.sampling_kwargs(SamplingParams(top_k=40), 5)["top_k"] == 40
    assert vllm.sampling_kwargs(SamplingParams(), 5)["stop"] is None


def test_vllm_engine_and_lora_arguments() -> None:
    args = vllm.engine_kwargs(Path("/m"), dtype="bfloat16", context_length=4096, max_batch=32)
    assert args["model"] == "/m" and args["enable_lora"] and args["max_model_len"] == 4096
    assert args["max_num_seqs"] == 32 and args["max_loras"] == vllm.MAX_LORAS
    assert vllm.lora_kwargs("sql", 3, "/a") == {
        "lora_name": "sql",
        "lora_int_id": 3,
        "lora_path": "/a",
    }
    assert vllm.finish_reason("length") == FinishReason.length
    assert vllm.finish_reason("stop") == FinishReason.stop


def test_vllm_says_what_is_missing_here() -> None:
    assert not vllm.vllm_available()
    with pytest.raises(CapabilityMissing, match="gpu"):
        vllm.require_vllm()


def test_ollama_options_mapping() -> None:
    params = SamplingParams(temperature=0, top_p=0.5, top_k=10, max_tokens=9, stop=["\n"], seed=1)
    assert ol.to_ollama_options(params) == {
        "temperature": 0,
        "top_p": 0.5,
        "top_k": 10,
        "num_predict": 9,
        "stop": ["\n"],
        "seed": 1,
    }
    assert ol.to_ollama_options(SamplingParams()) == {"temperature": 1.0, "top_p": 1.0}


def test_ollama_stats_in_milliseconds() -> None:
    chunk = SimpleNamespace(
        prompt_eval_count=12,
        eval_count=30,
        prompt_eval_duration=5_000_000,
        eval_duration=300_000_000,
        total_duration=400_000_000,
    )
    stats = ol.stats_from(chunk)
    assert (stats.prompt_tokens, stats.completion_tokens) == (12, 30)
    assert (stats.prompt_ms, stats.decode_ms, stats.total_ms) == (5.0, 300.0, 400.0)
