"""Shorter embeddings (`dimensions`) for the models trained to be cut short.

Matryoshka-trained models put the most information in the first coordinates, so their
vector cut to its first d coordinates and re-normalised stays a good embedding; for any
other model the cut silently loses quality, so it is refused. The models are known by
name (their model cards say which sizes they were trained for).
"""

from __future__ import annotations

import numpy as np

from aift.errors import InvalidInput

# name fragment (lower case) → the smallest size the model was trained for
TRAINED_FOR_SHORTER = {
    "nomic-embed-text-v1.5": 64,
    "nomic-embed-text-v2": 256,
    "mxbai-embed-large-v1": 64,
    "mxbai-embed-xsmall-v1": 64,
    "snowflake-arctic-embed-m-v1.5": 256,
    "snowflake-arctic-embed-l-v2.0": 256,
    "embeddinggemma": 128,
    "qwen3-embedding": 32,
    "jina-embeddings-v3": 32,
    "gte-modernbert": 64,
    "bge-m3-matryoshka": 64,
}


def smallest_size(model: str) -> int | None:
    """The smallest size `model` was trained to be cut to (None: not trained for it)."""
    name = model.lower()
    return next((size for key, size in TRAINED_FOR_SHORTER.items() if key in name), None)


def shorten(model: str, vectors: list[list[float]], dimensions: int | None) -> list[list[float]]:
    """The vectors cut to `dimensions` and re-normalised, or a clear error when the
    model was not trained for it or the size is out of its range."""
    if dimensions is None or not vectors or dimensions == len(vectors[0]):
        return vectors
    full = len(vectors[0])
    least = smallest_size(model)
    if least is None:
        raise InvalidInput(
            f"{model} makes {full}-dimensional vectors and was not trained to be shortened "
            f"(Matryoshka); dimensions={dimensions} is not supported. Leave dimensions out "
            "or choose a model trained for it (e.g. nomic-embed-text-v1.5)."
        )
    if not least <= dimensions < full:
        raise InvalidInput(f"{model} can make vectors of {least} to {full} dimensions.")
    cut = np.asarray(vectors, dtype=np.float32)[:, :dimensions]
    cut /= np.maximum(np.linalg.norm(cut, axis=1, keepdims=True), 1e-12)
    return cut.tolist()
