"""Which vector index engine a process uses directly."""

from __future__ import annotations

from aift.config import Settings
from aift.rag.index import VectorIndex


def open_index(settings: Settings) -> VectorIndex:
    """The index this process may use directly: a Qdrant server when configured, else the
    embedded engine in this process (only for the process that owns the folder: the
    index process, or a private folder such as an evaluation's)."""
    if settings.qdrant_url:
        from aift.rag.index_server import QdrantServerIndex

        return QdrantServerIndex(settings.qdrant_url)
    from aift.rag.index_edge import EdgeIndex
    from aift.threads import compute_threads

    return EdgeIndex(settings.effective_qdrant_path, threads=compute_threads())
