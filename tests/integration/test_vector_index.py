"""The vector index against its real engines: qdrant-edge in this process, the same
through the index process's pipe, and a Qdrant server when AIFT_TEST_QDRANT_URL names
one. Scores are checked with numpy."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from aift.config import load_settings
from aift.rag.index import IndexPoint, VectorIndex, chunk_filter
from aift.rag.index_edge import EdgeIndex
from aift.rag.index_process import IndexProcess

DIM = 16
COUNT = 60


def point_id(n: int) -> str:
    return f"00000000-0000-0000-0000-{n:012d}"


def points(vectors: np.ndarray, first: int = 0) -> list[IndexPoint]:
    return [
        IndexPoint(
            id=point_id(n),
            dense=vector.tolist(),
            # term 1000 in every point (no weight under IDF), term n+1 in one point only
            keyword_indices=[1000, n + 1],
            keyword_values=[1.0, 1.0],
            payload={
                "document_id": "a" if n < 30 else "b",
                "page_start": n // 10 + 1,
                "page_end": n // 10 + 1,
                "chunk_index": n,
            },
        )
        for n, vector in enumerate(vectors, start=first)
    ]


@pytest.fixture(params=["edge", "process", "server"])
def index(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[VectorIndex, np.ndarray]]:
    store: VectorIndex
    if request.param == "edge":
        store = EdgeIndex(tmp_path / "edge")
    elif request.param == "process":
        store = IndexProcess(load_settings(workspace=tmp_path, qdrant_path=tmp_path / "edge"))
    else:
        url = os.environ.get("AIFT_TEST_QDRANT_URL")
        if not url:
            pytest.skip("AIFT_TEST_QDRANT_URL names no Qdrant server")
        from aift.rag.index_server import QdrantServerIndex

        store = QdrantServerIndex(url)
        store.drop("c")
    vectors = np.random.default_rng(0).standard_normal((COUNT, DIM)).astype(np.float32)
    store.ensure("c", DIM)
    store.ensure("c", DIM)  # idempotent
    store.upsert("c", points(vectors))
    yield store, vectors
    store.drop("c")
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
    ids = {point_id(n): n for n in (0, 7, 59)}
    got = store.cosines("c", query.tolist(), ids)
    assert got.keys() == ids.keys()
    for key, n in ids.items():
        assert got[key] == pytest.approx(expected[n], abs=1e-5)
    top = store.search_dense("c", query.tolist(), 5)
    assert [h.id for h in top] == [point_id(int(n)) for n in np.argsort(-expected)[:5]]
    assert top[0].score == pytest.approx(expected.max(), abs=1e-5)
    assert store.cosines("c", query.tolist(), []) == {}


def test_filters_keywords_counts_and_deletes(index) -> None:  # noqa: ANN001
    store, vectors = index
    query = vectors[42].tolist()
    pages_2_to_3 = chunk_filter(page_from=2, page_to=3)
    found = store.search_dense("c", query, COUNT, pages_2_to_3)
    assert {h.payload["chunk_index"] for h in found} == set(range(10, 30))
    b_on_page_5 = chunk_filter(documents=["b"], page_from=5, page_to=5)
    assert store.count("c", b_on_page_5) == 10
    assert store.count("c") == COUNT and store.count("missing") == 0
    # a term in one chunk beats a term in all of them (IDF applied by the engine)
    hits = store.search_keywords("c", [1000, 8], [1.0, 1.0], 3)
    assert hits[0].id == point_id(7) and hits[0].score > hits[1].score
    assert store.search_keywords("c", [8], [1.0], 3, chunk_filter(documents=["b"])) == []
    assert store.search_keywords("c", [], [], 3) == []
    store.delete_where("c", "document_id", "a")
    assert store.count("c") == 30
    assert all(h.payload["document_id"] == "b" for h in store.search_dense("c", query, COUNT))
    assert "c" in store.collections()
    store.upsert("c", points(vectors)[:5])  # written again: still one point per id
    assert store.count("c") == 35


def legacy_store(folder: Path, vectors: np.ndarray) -> None:
    """A qdrant-client local-mode store as releases before qdrant-edge left it."""
    from qdrant_client import QdrantClient, models

    client = QdrantClient(path=str(folder))
    for name in ("kb_x_g1", "kb_y_g2"):
        client.create_collection(
            name,
            vectors_config={"dense": models.VectorParams(size=DIM, distance="Cosine")},
            sparse_vectors_config={
                "keywords": models.SparseVectorParams(modifier=models.Modifier.IDF)
            },
        )
    client.upsert(
        "kb_x_g1",
        [
            models.PointStruct(
                id=p.id,
                vector={
                    "dense": p.dense,
                    "keywords": models.SparseVector(
                        indices=p.keyword_indices, values=p.keyword_values
                    ),
                },
                payload=p.payload,
            )
            for p in points(vectors)
        ],
    )
    client.close()


def test_an_old_store_is_moved_once_resuming_where_it_stopped(tmp_path: Path) -> None:
    from aift.rag.index_migration import BATCH, LegacyMigration

    vectors = np.random.default_rng(3).standard_normal((BATCH + 40, DIM)).astype(np.float32)
    settings = load_settings(workspace=tmp_path)
    legacy_store(settings.legacy_qdrant_path, vectors)
    # a first server copies one batch, then stops (killed, say)
    first = EdgeIndex(settings.effective_qdrant_path)
    assert LegacyMigration(settings.legacy_qdrant_path, first).step()
    assert first.count("kb_x_g1") == BATCH
    first.close()
    # the next one resumes in its index process, keeps answering, and finishes
    store = IndexProcess(settings)
    try:
        deadline = 120
        while store.status().migrating and deadline > 0:
            deadline -= 1
            import time

            time.sleep(1)
        status = store.status()
        assert not status.migrating and status.error is None
        assert status.migration_total == BATCH + 40
        assert store.count("kb_x_g1") == BATCH + 40
        assert sorted(store.collections()) == ["kb_x_g1", "kb_y_g2"]
        top = store.search_dense("kb_x_g1", vectors[280].tolist(), 1)[0]
        assert top.id == point_id(280) and top.payload["document_id"] == "b"
        hit = store.search_keywords("kb_x_g1", [11], [1.0], 1)[0]
        assert hit.id == point_id(10)
        assert not settings.legacy_qdrant_path.exists()  # removed once all was moved
    finally:
        store.close()


def test_optimized_segments_answer_like_the_fresh_ones(tmp_path: Path) -> None:
    """Past the indexing threshold the engine builds HNSW: nearest neighbours of clustered
    vectors stay what exact search says."""
    from aift.rag.index_edge import INDEXING_POINTS

    rng = np.random.default_rng(4)
    centres = rng.standard_normal((20, DIM))
    size = INDEXING_POINTS + 1000
    vectors = (centres[rng.integers(0, 20, size)] + 0.3 * rng.standard_normal((size, DIM))).astype(
        np.float32
    )
    store = EdgeIndex(tmp_path / "edge")
    store.ensure("c", DIM)
    for first in range(0, size, 1000):
        store.upsert("c", points(vectors[first : first + 1000], first))
    assert store.status().unoptimized_points == size
    assert store.maintain() and store.status().unoptimized_points == 0
    for q in range(5):
        query = vectors[q * 7]
        expected = np.argsort(-cosine(vectors, query))[:10]
        got = [int(h.id[-12:]) for h in store.search_dense("c", query.tolist(), 10)]
        assert len(set(got) & set(expected.tolist())) >= 8
    store.close()


def test_the_index_process_comes_back_after_a_crash(tmp_path: Path) -> None:
    store = IndexProcess(load_settings(workspace=tmp_path))
    try:
        store.ensure("c", DIM)
        store.upsert("c", points(np.ones((3, DIM), dtype=np.float32)))
        assert store._process is not None
        store._process.kill()
        store._process.wait()
        assert store.count("c") == 3  # a fresh process, the same data
        assert store.status().migrating is False
    finally:
        store.close()
    assert store._process is None


def test_keyword_scores_do_not_remember_deleted_points(index) -> None:  # noqa: ANN001
    """Deleting a document leaves the keyword scores of the others as if it had never
    been there (the IDF counts no deleted point), whatever was optimized in between."""
    store, vectors = index
    if not isinstance(store, (EdgeIndex, IndexProcess)):
        pytest.skip("a Qdrant server vacuums in its own time")

    def keyword_scores() -> dict[str, float]:
        found = store.search_keywords("c", [1000, 3, 5], [1.0, 1.0, 1.0], COUNT)
        return {hit.id: round(hit.score, 6) for hit in found}

    before = keyword_scores()
    extra = [
        IndexPoint(
            id=point_id(1000 + n),
            dense=vectors[n].tolist(),
            keyword_indices=[1000, 3],
            keyword_values=[1.0, 1.0],
            payload={"document_id": "gone", "page_start": 1, "page_end": 1, "chunk_index": n},
        )
        for n in range(20)
    ]
    store.upsert("c", extra)
    assert keyword_scores() != before, "the extra points change the statistics"
    store.delete_where("c", "document_id", "gone")
    assert keyword_scores() == before
