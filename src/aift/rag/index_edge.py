"""The embedded vector index: Qdrant's in-process engine (qdrant-edge), one shard folder
per collection under one root folder.

The engine has no background optimizer and no flush timer: written points sit in an
appendable segment (searched exactly) until `maintain()` optimizes them into HNSW-indexed
segments, capped in size so one optimization builds an index over ~10k points, not the
whole collection. A shard folder may be opened by one process only (the engine locks its
write-ahead log), and each call holds the GIL while it runs: hence the index process.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aift.errors import ServiceUnavailable
from aift.rag.index import (
    DENSE,
    KEYWORDS,
    ChunkFilter,
    IndexHit,
    IndexPoint,
    IndexStatus,
    cosines_of,
    parse_collection,
)

log = logging.getLogger(__name__)

SEGMENT_POINTS = 10_000  # points per optimized segment: one HNSW build's worth
INDEXING_POINTS = 5_000  # below this a segment is searched exactly (as fast, and exact)
PAYLOAD_KB_PER_POINT = 2  # chunk text and place, roughly
# Qdrant's keyword IDF counts the points a segment holds, deleted ones included, until the
# segment is vacuumed — by default only past 20 % deleted and 1,000 vectors, so a small
# knowledge base never is: after a document's deletion its keyword scores (and the
# fused ranking) depended on what had been deleted before, and on whether an
# optimisation had run since. Any deleted point makes a segment due, and a delete
# vacuums at once.
VACUUM_DELETED_FRACTION = 1e-9
VACUUM_MIN_VECTORS = 1


class EdgeIndex:
    """`VectorIndex` over qdrant-edge shards in `root` (one folder per collection)."""

    def __init__(self, root: Path, *, threads: int = 1) -> None:
        self.root = root
        self.threads = max(1, threads)
        self.root.mkdir(parents=True, exist_ok=True)
        self.shards: dict[str, Any] = {}
        self.unoptimized: dict[str, int] = {}

    # collections -----------------------------------------------------------------------

    def _folder(self, name: str) -> Path:
        if parse_collection(name) is None and not name.isidentifier():
            raise ValueError(f"Not a collection name: {name!r}")
        return self.root / name

    def _shard(self, name: str) -> Any | None:
        """The open shard of a collection, opening it on first use; None if it does not
        exist."""
        shard = self.shards.get(name)
        if shard is not None:
            return shard
        folder = self._folder(name)
        if not (folder / "edge_config.json").exists():
            return None
        from qdrant_edge import EdgeShard

        try:
            shard = EdgeShard.load(str(folder), self._current_config(folder))
        except Exception as exc:  # noqa: BLE001 - the engine raises plain exceptions
            raise ServiceUnavailable(
                f"The vector index folder {folder} cannot be opened ({exc}). Only one aift "
                "server may use a workspace; stop the other one, or set AIFT_QDRANT_URL "
                "to share a Qdrant server."
            ) from None
        self.shards[name] = shard
        return shard

    def ensure(self, name: str, dimension: int) -> None:
        if self._shard(name) is not None:
            return
        from qdrant_edge import EdgeShard, PayloadSchemaType, UpdateOperation

        folder = self._folder(name)
        shutil.rmtree(folder, ignore_errors=True)  # a create that died half-way
        shard = EdgeShard.create(str(folder), self._config(dimension))
        shard.update(UpdateOperation.create_field_index("document_id", PayloadSchemaType.Keyword))
        for key in ("page_start", "page_end"):
            shard.update(UpdateOperation.create_field_index(key, PayloadSchemaType.Integer))
        shard.flush()
        self.shards[name] = shard

    def _current_config(self, folder: Path) -> Any | None:
        """This release's settings for an existing collection (its dimension kept), so a
        shard made by an earlier release gets them too (e.g. vacuuming deleted points);
        None where the stored settings cannot be read (the shard keeps its own)."""
        try:
            stored = json.loads((folder / "edge_config.json").read_text(encoding="utf-8"))
            return self._config(int(stored["vectors"][DENSE]["size"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _config(self, dimension: int) -> Any:
        from qdrant_edge import (
            Distance,
            EdgeConfig,
            EdgeOptimizersConfig,
            EdgeSparseVectorParams,
            EdgeVectorParams,
            HnswIndexConfig,
            Modifier,
        )

        vector_kb = dimension * 4 / 1024
        return EdgeConfig(
            vectors={DENSE: EdgeVectorParams(size=dimension, distance=Distance.Cosine)},
            sparse_vectors={KEYWORDS: EdgeSparseVectorParams(modifier=Modifier.Idf)},
            optimizers=EdgeOptimizersConfig(
                deleted_threshold=VACUUM_DELETED_FRACTION,
                vacuum_min_vector_number=VACUUM_MIN_VECTORS,
                max_segment_size=int(SEGMENT_POINTS * (vector_kb + PAYLOAD_KB_PER_POINT)),
                indexing_threshold=int(INDEXING_POINTS * vector_kb),
                default_segment_number=2,
            ),
            hnsw_config=HnswIndexConfig(
                m=16,
                ef_construct=100,
                full_scan_threshold=int(INDEXING_POINTS * vector_kb),
                max_indexing_threads=self.threads,
                payload_m=0,  # no per-document sub-graphs: filtered searches go exact
            ),
            max_search_threads=self.threads,
        )

    def drop(self, name: str) -> None:
        shard = self.shards.pop(name, None)
        if shard is not None:
            shard.close()
        self.unoptimized.pop(name, None)
        shutil.rmtree(self._folder(name), ignore_errors=True)

    def collections(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if (p / "edge_config.json").exists())

    # writes ------------------------------------------------------------------------------

    def upsert(self, name: str, points: list[IndexPoint]) -> None:
        from qdrant_edge import Point, SparseVector, UpdateOperation

        shard = self._shard(name)
        if shard is None:
            raise ValueError(f"No collection {name}; ensure() it first.")
        shard.update(
            UpdateOperation.upsert_points(
                [
                    Point(
                        id=p.id,
                        vector={
                            DENSE: p.dense,
                            KEYWORDS: SparseVector(p.keyword_indices, p.keyword_values),
                        },
                        payload=p.payload,
                    )
                    for p in points
                ]
            )
        )
        self.unoptimized[name] = self.unoptimized.get(name, 0) + len(points)

    def delete_where(self, name: str, key: str, value: str) -> None:
        from qdrant_edge import FieldCondition, Filter, MatchValue, UpdateOperation

        shard = self._shard(name)
        if shard is None:
            return
        shard.update(
            UpdateOperation.delete_points_by_filter(
                Filter(must=[FieldCondition(key=key, match=MatchValue(value))])
            )
        )
        # vacuum now, so the keyword statistics no longer count the deleted points
        shard.optimize()
        shard.flush()

    def maintain(self) -> bool:
        """Optimize and flush one collection with unoptimized writes (the largest
        backlog first); True if there was one. Bounded work: call it between requests."""
        if not self.unoptimized:
            return False
        name = max(self.unoptimized, key=lambda key: self.unoptimized[key])
        self.unoptimized.pop(name)
        shard = self._shard(name)
        if shard is None:
            return True
        started = time.perf_counter()
        shard.optimize()
        shard.flush()
        log.debug("optimized %s in %.2f s", name, time.perf_counter() - started)
        return True

    # reads -------------------------------------------------------------------------------

    def count(self, name: str, where: ChunkFilter | None = None) -> int:
        from qdrant_edge import CountRequest

        shard = self._shard(name)
        if shard is None:
            return 0
        return int(shard.count(CountRequest(filter=_filter(where), exact=True)))

    def search_dense(
        self,
        name: str,
        vector: list[float],
        limit: int,
        where: ChunkFilter | None = None,
        *,
        exact: bool = False,
    ) -> list[IndexHit]:
        """Nearest chunks by cosine; `exact` skips HNSW (to measure its recall)."""
        return self._query(name, vector, DENSE, limit, where, exact=exact)

    def lowest_dense(
        self, name: str, vector: list[float], where: ChunkFilter | None = None
    ) -> float | None:
        # The best match of the opposite vector: cos(-v, d) = -cos(v, d). Approximate
        # past the indexing threshold, which is fine for a scale's anchor.
        found = self._query(name, [-x for x in vector], DENSE, 1, where, with_payload=False)
        return -found[0].score if found else None

    def cosines(self, name: str, vector: list[float], ids: Iterable[str]) -> dict[str, float]:
        ids = list(ids)
        shard = self._shard(name)
        if not ids or shard is None:
            return {}
        records = shard.retrieve(ids, with_payload=False, with_vector=[DENSE])
        stored = {str(r.id): r.vector[DENSE] for r in records if isinstance(r.vector, dict)}
        return cosines_of(vector, stored)

    def search_keywords(
        self,
        name: str,
        indices: list[int],
        values: list[float],
        limit: int,
        where: ChunkFilter | None = None,
    ) -> list[IndexHit]:
        from qdrant_edge import SparseVector

        if not indices:
            return []
        return self._query(name, SparseVector(indices, values), KEYWORDS, limit, where)

    def _query(
        self,
        name: str,
        query: Any,
        using: str,
        limit: int,
        where: ChunkFilter | None,
        *,
        with_payload: bool = True,
        exact: bool = False,
    ) -> list[IndexHit]:
        from qdrant_edge import Query, QueryRequest, SearchParams

        shard = self._shard(name)
        if shard is None:
            return []
        found = shard.query(
            QueryRequest(
                limit=limit,
                query=Query.Nearest(query, using=using),
                filter=_filter(where),
                with_payload=with_payload,
                params=SearchParams(exact=True) if exact else None,
            )
        )
        return [IndexHit(str(p.id), float(p.score), dict(p.payload or {})) for p in found]

    def status(self) -> IndexStatus:
        return IndexStatus(
            unoptimized_points=sum(self.unoptimized.values()), backlog=dict(self.unoptimized)
        )

    def close(self) -> None:
        for shard in self.shards.values():
            shard.flush()
            shard.close()
        self.shards.clear()


def _filter(where: ChunkFilter | None) -> Any:
    from qdrant_edge import FieldCondition, Filter, MatchAny, RangeFloat

    if not where:
        return None
    conditions: list[Any] = []
    if where.documents:
        conditions.append(FieldCondition(key="document_id", match=MatchAny(list(where.documents))))
    if where.page_from is not None:
        conditions.append(FieldCondition(key="page_end", range=RangeFloat(gte=where.page_from)))
    if where.page_to is not None:
        conditions.append(FieldCondition(key="page_start", range=RangeFloat(lte=where.page_to)))
    return Filter(must=conditions)
