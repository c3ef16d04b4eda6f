"""The vector index's score look-ups against a real embedded Qdrant, checked with numpy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aift.config import load_settings
from aift.rag.index import IndexPoint, VectorIndex, chunk_filter

DIM = 16


@pytest.fixture
def index(tmp_path: Path):  # noqa: ANN201
    vectors = np.random.default_rng(0).standard_normal((60, DIM)).astype(np.float32)
    store = VectorIndex(load_settings(workspace=tmp_path, qdrant_path=tmp_path / "q"))
    store.ensure("c", DIM)
    store.upsert(
        "c",
        [
            IndexPoint(
                id=f"00000000-0000-0000-0000-{n:012d}",
                dense=vector.tolist(),
                keyword_indices=[n + 1],
                keyword_values=[1.0],
                payload={"document_id": "a" if n < 30 else "b", "page_start": 1, "page_end": 1},
            )
            for n, vector in enumerate(vectors)
        ],
    )
    yield store, vectors
    store.close()


def cosine(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    return vectors @ query / np.linalg.norm(vectors, axis=1) / np.linalg.norm(query)


def test_lowest_dense_is_the_floor_of_the_searched_chunks(index) -> None:  # noqa: ANN001
    store, vectors = index
    query = np.random.default_rng(1).standard_normal(DIM).astype(np.float32)
    expected = cosine(vectors, query)
    assert store.lowest_dense("c", query.tolist()) == pytest.approx(expected.min(), abs=1e-5)
    only_b = chunk_filter(documents=["b"])
    assert store.lowest_dense("c", query.tolist(), only_b) == pytest.approx(
        expected[30:].min(), abs=1e-5
    )
    assert store.lowest_dense("missing", query.tolist()) is None


def test_cosines_of_chunks_match_their_vectors(index) -> None:  # noqa: ANN001
    store, vectors = index
    query = np.random.default_rng(2).standard_normal(DIM).astype(np.float32)
    expected = cosine(vectors, query)
    ids = {f"00000000-0000-0000-0000-{n:012d}": n for n in (0, 7, 59)}
    got = store.cosines("c", query.tolist(), ids)
    assert got.keys() == ids.keys()
    for key, n in ids.items():
        assert got[key] == pytest.approx(expected[n], abs=1e-5)
    top = store.search_dense("c", query.tolist(), 1)[0]
    assert top.id.endswith(f"{int(np.argmax(expected)):012d}")
    assert store.cosines("c", query.tolist(), []) == {}
