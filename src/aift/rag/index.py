"""The vector index: one Qdrant collection per knowledge base generation, holding for
each chunk a dense vector (the embedding model's) and a sparse keyword vector (BM25
term frequencies, IDF applied by Qdrant).

Embedded Qdrant (`qdrant_data/`) locks its folder, so exactly one process may open it:
the server. Jobs never construct a VectorIndex in embedded mode; they leave their chunks
in the database and the server's IndexSyncer writes them here. With a Qdrant server
(AIFT_QDRANT_URL) any process may, and the same code runs against it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from aift.config import Settings
from aift.errors import ServiceUnavailable

DENSE = "dense"
KEYWORDS = "keywords"
PREFIX = "kb_"


def collection_name(kb_id: str, generation: int) -> str:
    return f"{PREFIX}{kb_id}_g{generation}"


def parse_collection(name: str) -> tuple[str, int] | None:
    """(kb id, generation) of one of our collection names, else None."""
    if not name.startswith(PREFIX) or "_g" not in name:
        return None
    kb_id, _, generation = name[len(PREFIX) :].rpartition("_g")
    return (kb_id, int(generation)) if generation.isdigit() else None


@dataclass
class IndexPoint:
    id: str
    dense: list[float]
    keyword_indices: list[int]
    keyword_values: list[float]
    payload: dict[str, Any]


@dataclass
class IndexHit:
    id: str
    score: float
    payload: dict[str, Any]


class VectorIndex:
    """Thin, typed access to Qdrant for what aift stores and asks."""

    def __init__(self, settings: Settings) -> None:
        from qdrant_client import QdrantClient

        try:
            if settings.qdrant_url:
                self.client = QdrantClient(url=settings.qdrant_url, timeout=30)
            else:
                path = settings.effective_qdrant_path
                path.mkdir(parents=True, exist_ok=True)
                self.client = QdrantClient(path=str(path))
        except (RuntimeError, ValueError) as exc:  # embedded store locked by another process
            raise ServiceUnavailable(
                f"The vector store cannot be opened ({exc}). With embedded Qdrant only the "
                "aift server may open it; set AIFT_QDRANT_URL to share a Qdrant server."
            ) from None
        self.lock = threading.RLock()  # embedded client calls are not thread-safe

    def ensure(self, name: str, dimension: int) -> None:
        """Create the collection (dense cosine + sparse IDF) if it does not exist."""
        from qdrant_client import models

        with self.lock:
            if self.client.collection_exists(name):
                return
            self.client.create_collection(
                name,
                vectors_config={DENSE: models.VectorParams(size=dimension, distance="Cosine")},
                sparse_vectors_config={
                    KEYWORDS: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
            )

    def upsert(self, name: str, points: list[IndexPoint]) -> None:
        """Write points; the same id written twice stays one point."""
        from qdrant_client import models

        structs = [
            models.PointStruct(
                id=p.id,
                vector={
                    DENSE: p.dense,
                    KEYWORDS: models.SparseVector(
                        indices=p.keyword_indices, values=p.keyword_values
                    ),
                },
                payload=p.payload,
            )
            for p in points
        ]
        with self.lock:
            self.client.upsert(name, points=structs, wait=True)

    def delete_where(self, name: str, key: str, value: str) -> None:
        """Delete the points whose payload `key` equals `value` (e.g. a document id)."""
        from qdrant_client import models

        with self.lock:
            if not self.client.collection_exists(name):
                return
            self.client.delete(
                name,
                points_selector=models.FilterSelector(
                    filter=models.Filter(
                        must=[models.FieldCondition(key=key, match=models.MatchValue(value=value))]
                    )
                ),
                wait=True,
            )

    def drop(self, name: str) -> None:
        with self.lock:
            if self.client.collection_exists(name):
                self.client.delete_collection(name)

    def collections(self) -> list[str]:
        with self.lock:
            return [c.name for c in self.client.get_collections().collections]

    def count(self, name: str, where: Any = None) -> int:
        """Points in a collection (0 when it does not exist), optionally filtered."""
        with self.lock:
            if not self.client.collection_exists(name):
                return 0
            return self.client.count(name, count_filter=where, exact=True).count

    def search_dense(
        self, name: str, vector: list[float], limit: int, where: Any = None
    ) -> list[IndexHit]:
        """Nearest chunks by cosine; `where` from `chunk_filter`."""
        return self._query(name, vector, DENSE, limit, where)

    def lowest_dense(self, name: str, vector: list[float], where: Any = None) -> float | None:
        """The lowest cosine any chunk (matching `where`) has to the vector: the floor of
        the dense scale for score fusion. Found as the best match of the opposite vector
        (cos(-v, d) = -cos(v, d)), one more nearest-neighbour query."""
        found = self._query(name, [-x for x in vector], DENSE, 1, where, with_payload=False)
        return -found[0].score if found else None

    def cosines(self, name: str, vector: list[float], ids: Iterable[str]) -> dict[str, float]:
        """The cosine of these chunks to the vector, from their stored vectors: scores for
        candidates another method found, without another search over the collection."""
        ids = list(ids)
        if not ids:
            return {}
        with self.lock:
            records = self.client.retrieve(name, ids, with_vectors=[DENSE], with_payload=False)
        query = np.asarray(vector, dtype=np.float32)
        query /= np.linalg.norm(query) or 1.0
        out = {}
        for record in records:
            vectors = record.vector
            assert isinstance(vectors, dict), "stored with named vectors"
            stored = np.asarray(vectors[DENSE], dtype=np.float32)
            out[str(record.id)] = float(stored @ query / (np.linalg.norm(stored) or 1.0))
        return out

    def search_keywords(
        self, name: str, indices: list[int], values: list[float], limit: int, where: Any = None
    ) -> list[IndexHit]:
        """Best chunks by BM25 (term frequencies stored, IDF applied by Qdrant)."""
        from qdrant_client import models

        if not indices:
            return []
        query = models.SparseVector(indices=indices, values=values)
        return self._query(name, query, KEYWORDS, limit, where)

    def _query(
        self,
        name: str,
        query: Any,
        using: str,
        limit: int,
        where: Any,
        *,
        with_payload: bool = True,
    ) -> list[IndexHit]:
        with self.lock:
            if not self.client.collection_exists(name):
                return []
            found = self.client.query_points(
                name,
                query=query,
                using=using,
                limit=limit,
                query_filter=where,
                with_payload=with_payload,
            )
        return [IndexHit(str(p.id), float(p.score), p.payload or {}) for p in found.points]

    def close(self) -> None:
        with self.lock:
            self.client.close()


def chunk_filter(
    documents: list[str] | None = None, page_from: int | None = None, page_to: int | None = None
) -> Any:
    """Chunks of these documents that overlap the page range (None: no condition)."""
    from qdrant_client import models

    conditions: list[Any] = []
    if documents:
        conditions.append(
            models.FieldCondition(key="document_id", match=models.MatchAny(any=list(documents)))
        )
    if page_from is not None:
        conditions.append(models.FieldCondition(key="page_end", range=models.Range(gte=page_from)))
    if page_to is not None:
        conditions.append(models.FieldCondition(key="page_start", range=models.Range(lte=page_to)))
    return models.Filter(must=conditions) if conditions else None
