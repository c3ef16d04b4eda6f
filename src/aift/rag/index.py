"""The vector index: one collection per knowledge base generation, holding for each
chunk a dense vector (the embedding model's) and a sparse keyword vector (BM25 term
frequencies, IDF applied by the engine).

Two engines stand behind one `VectorIndex` interface:
- embedded (the default): Qdrant's in-process engine, qdrant-edge (`index_edge.py`), one
  shard folder per collection. It locks its folders and holds the GIL while it works, so
  the server runs it in a child process of its own (`index_process.py`) and talks to it
  through a pipe; jobs leave their chunks in the database and the server's IndexSyncer
  writes them.
- a Qdrant server (AIFT_QDRANT_URL, `index_server.py`), which any process may use.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

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


@dataclass(frozen=True)
class ChunkFilter:
    """Which chunks a search or count considers: those of these documents (any) that
    overlap the page range. Engine-neutral; each engine translates it."""

    documents: tuple[str, ...] = field(default_factory=tuple)
    page_from: int | None = None
    page_to: int | None = None

    def __bool__(self) -> bool:
        return bool(self.documents) or self.page_from is not None or self.page_to is not None


def chunk_filter(
    documents: list[str] | None = None, page_from: int | None = None, page_to: int | None = None
) -> ChunkFilter | None:
    """Chunks of these documents that overlap the page range (None: no condition)."""
    found = ChunkFilter(tuple(documents or ()), page_from, page_to)
    return found if found else None


def cosines_of(query: list[float], stored: dict[str, Any]) -> dict[str, float]:
    """Cosine of the query to each stored vector (by id)."""
    unit = np.asarray(query, dtype=np.float32)
    unit /= np.linalg.norm(unit) or 1.0
    out = {}
    for key, vector in stored.items():
        array = np.asarray(vector, dtype=np.float32)
        out[key] = float(array @ unit / (np.linalg.norm(array) or 1.0))
    return out


@dataclass
class IndexStatus:
    """What the index is doing besides answering: a migration in progress, points
    written but not yet optimized."""

    migrating: bool = False
    migrated_points: int = 0
    migration_total: int = 0
    unoptimized_points: int = 0
    backlog: dict[str, int] = field(default_factory=dict)  # unoptimized points by collection
    error: str | None = None

    def note(self) -> str | None:
        """What a user should know about results while this lasts."""
        if self.migrating:
            return (
                "The vector index is being moved to the new engine "
                f"({self.migrated_points:,}/{self.migration_total:,} vectors); results are "
                "incomplete until it finishes."
            )
        return self.error


class VectorIndex(Protocol):
    """What aift stores in and asks of a vector index."""

    def ensure(self, name: str, dimension: int) -> None:
        """Create the collection (dense cosine + sparse IDF) if it does not exist."""

    def upsert(self, name: str, points: list[IndexPoint]) -> None:
        """Write points; the same id written twice stays one point."""

    def delete_where(self, name: str, key: str, value: str) -> None:
        """Delete the points whose payload `key` equals `value` (e.g. a document id)."""

    def drop(self, name: str) -> None:
        """Remove a collection and everything in it (nothing if it does not exist)."""

    def collections(self) -> list[str]:
        """The names of the collections that exist."""

    def count(self, name: str, where: ChunkFilter | None = None) -> int:
        """Points in a collection (0 when it does not exist), optionally filtered."""

    def search_dense(
        self, name: str, vector: list[float], limit: int, where: ChunkFilter | None = None
    ) -> list[IndexHit]:
        """Nearest chunks by cosine."""

    def lowest_dense(
        self, name: str, vector: list[float], where: ChunkFilter | None = None
    ) -> float | None:
        """The lowest cosine any chunk (matching `where`) has to the vector: the floor of
        the dense scale for score fusion (None for an empty collection)."""

    def cosines(self, name: str, vector: list[float], ids: Iterable[str]) -> dict[str, float]:
        """The cosine of these chunks to the vector, from their stored vectors: scores for
        candidates another method found, without another search over the collection."""

    def search_keywords(
        self,
        name: str,
        indices: list[int],
        values: list[float],
        limit: int,
        where: ChunkFilter | None = None,
    ) -> list[IndexHit]:
        """Best chunks by BM25 (term frequencies stored, IDF applied by the engine)."""

    def status(self) -> IndexStatus:
        """Background work in progress (migration, optimization)."""

    def close(self) -> None:
        """Release the engine (files, connections)."""
