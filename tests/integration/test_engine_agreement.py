"""The same packaged SmolLM2 through transformers and through llama.cpp agrees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aift.inference.engines.base import Sequence
from aift.inference.engines.llamacpp import LlamaCppEngine
from aift.inference.engines.transformers import TransformersEngine
from aift.inference.schemas import ChatMessage, SamplingParams
from aift.models.packaged import SMOLLM2
from aift.models.schemas import ModelFormat, ModelSource, ResolvedModel

pytestmark = pytest.mark.packaged_models

PROMPTS = [
    "What is the capital of France?",
    "Say hello.",
    "What is 2 plus 2?",
    "Name a color.",
    "Who wrote Hamlet?",
    "Translate 'cat' to French.",
    "List three fruits.",
]
GREEDY = SamplingParams(temperature=0, max_tokens=4)


def first_logits(engine, ids: list[int]) -> np.ndarray:  # noqa: ANN001
    seq = Sequence(
        id=10_000,
        prompt_ids=ids,
        params=GREEDY,
        adapter=None,
        max_new_tokens=1,
        rng=np.random.default_rng(0),
        stop=None,
    )
    logits = engine._prefill(seq)
    engine._release(seq)
    return logits


def test_greedy_decoding_agrees_between_engines(smollm2_transformers_dir: Path) -> None:
    gguf = SMOLLM2.locate()
    model = ResolvedModel(
        requested="smollm2",
        name="SmolLM2-135M-Instruct",
        source=ModelSource.packaged,
        format=ModelFormat.gguf,
        path=str(gguf.parent),
        file=gguf.name,
    )
    llama = LlamaCppEngine(model, max_batch=1)
    hf = TransformersEngine(model, model_dir=smollm2_transformers_dir, max_batch=1, dtype="float32")
    llama.load()
    hf.load()
    try:
        same_start = 0
        for prompt in PROMPTS:
            messages = [ChatMessage(role="user", content=prompt)]
            ids = llama.tokenize(llama.render_chat(messages))
            assert ids == hf.tokenize(hf.render_chat(messages)), "same template, same tokens"
            a, b = first_logits(llama, ids), first_logits(hf, ids)
            assert np.corrcoef(a, b)[0, 1] > 0.995, prompt
            top = np.sort(b)[-2:]
            if top[1] - top[0] > 0.3:  # a clear winner: quantization noise cannot flip it
                assert int(np.argmax(a)) == int(np.argmax(b)), prompt
            if llama.chat(messages, GREEDY).text() == hf.chat(messages, GREEDY).text():
                same_start += 1
        assert same_start >= 4, f"only {same_start} of {len(PROMPTS)} prompts began alike"
    finally:
        llama.close()
        hf.close()
