"""The vector index on a Qdrant server (AIFT_QDRANT_URL): the scale-out path. Any process
may open it, so ingestion jobs write their own chunks."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from aift.config import redact_url
from aift.errors import ServiceUnavailable
from aift.rag.index import (
    DENSE,
    KEYWORDS,
    ChunkFilter,
    IndexHit,
    IndexPoint,
    IndexStatus,
    cosines_of,
)


class QdrantServerIndex:
    """`VectorIndex` over qdrant-client talking to a Qdrant server."""

    def __init__(self, url: str) -> None:
        from qdrant_client import QdrantClient

        try:
            self.client = QdrantClient(url=url, timeout=30)
        except (RuntimeError, ValueError) as exc:
            raise ServiceUnavailable(
                redact_url(f"The Qdrant server at {url} cannot be used ({exc}).", url)
            ) from None
        self.lock = threading.RLock()

    def ensure(self, name: str, dimension: int) -> None:
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
                # keyword IDF counts deleted points until a vacuum: vacuum any segment
                # holding them, as the embedded index does (see index_edge)
                optimizers_config=models.OptimizersConfigDiff(
                    deleted_threshold=0.001,
                    vacuum_min_vector_number=100,  # the least a Qdrant server accepts
                ),
            )
            self.client.create_payload_index(name, "document_id", models.PayloadSchemaType.KEYWORD)
            for key in ("page_start", "page_end"):
                self.client.create_payload_index(name, key, models.PayloadSchemaType.INTEGER)

    def upsert(self, name: str, points: list[IndexPoint]) -> None:
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

    def count(self, name: str, where: ChunkFilter | None = None) -> int:
        with self.lock:
            if not self.client.collection_exists(name):
                return 0
            return self.client.count(name, count_filter=_filter(where), exact=True).count

    def search_dense(
        self, name: str, vector: list[float], limit: int, where: ChunkFilter | None = None
    ) -> list[IndexHit]:
        return self._query(name, vector, DENSE, limit, where)

    def lowest_dense(
        self, name: str, vector: list[float], where: ChunkFilter | None = None
    ) -> float | None:
        # The best match of the opposite vector: cos(-v, d) = -cos(v, d).
        found = self._query(name, [-x for x in vector], DENSE, 1, where, with_payload=False)
        return -found[0].score if found else None

    def cosines(self, name: str, vector: list[float], ids: Iterable[str]) -> dict[str, float]:
        ids = list(ids)
        if not ids:
            return {}
        with self.lock:
            records = self.client.retrieve(name, ids, with_vectors=[DENSE], with_payload=False)
        stored = {}
        for record in records:
            vectors = record.vector
            assert isinstance(vectors, dict), "stored with named vectors"
            stored[str(record.id)] = vectors[DENSE]
        return cosines_of(vector, stored)

    def search_keywords(
        self,
        name: str,
        indices: list[int],
        values: list[float],
        limit: int,
        where: ChunkFilter | None = None,
    ) -> list[IndexHit]:
        from qdrant_client import models

        if not indices:
            return []
        query = models.SparseVector(indices=indices, values=values)
        return self._query(name, query, KEYWORDS, limit, where)

    def status(self) -> IndexStatus:
        return IndexStatus()

    def _query(
        self,
        name: str,
        query: Any,
        using: str,
        limit: int,
        where: ChunkFilter | None,
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
                query_filter=_filter(where),
                with_payload=with_payload,
            )
        return [IndexHit(str(p.id), float(p.score), p.payload or {}) for p in found.points]

    def close(self) -> None:
        with self.lock:
            self.client.close()


def _filter(where: ChunkFilter | None) -> Any:
    from qdrant_client import models

    if not where:
        return None
    conditions: list[Any] = []
    if where.documents:
        conditions.append(
            models.FieldCondition(
                key="document_id", match=models.MatchAny(any=list(where.documents))
            )
        )
    if where.page_from is not None:
        conditions.append(
            models.FieldCondition(key="page_end", range=models.Range(gte=where.page_from))
        )
    if where.page_to is not None:
        conditions.append(
            models.FieldCondition(key="page_start", range=models.Range(lte=where.page_to))
        )
    return models.Filter(must=conditions)
