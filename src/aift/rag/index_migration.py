"""One-time move of a workspace's vectors from qdrant-client's local mode (releases before
the qdrant-edge engine kept them in workspace/qdrant_data) into the embedded index.

Runs in the index process a batch at a time between requests, so search keeps answering
(from what is already moved). Resumable: the position is saved after every batch in the
new index's folder and writes are idempotent (same ids). The old folder is removed only
once every collection is copied.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from aift.rag.index import DENSE, KEYWORDS, IndexPoint, IndexStatus, parse_collection
from aift.rag.index_edge import EdgeIndex

log = logging.getLogger(__name__)

BATCH = 256
STATE_FILE = "migration.json"


def legacy_store_present(legacy: Path) -> bool:
    """Whether `legacy` holds a qdrant-client local-mode store."""
    return (legacy / "meta.json").is_file()


class LegacyMigration:
    """Copies every aift collection of the local-mode store at `legacy` into `index`."""

    def __init__(self, legacy: Path, index: EdgeIndex) -> None:
        self.legacy = legacy
        self.index = index
        self.state_path = index.root / STATE_FILE
        self.state: dict[str, Any] = {"done": [], "current": None, "offset": None, "copied": 0}
        if self.state_path.exists():
            self.state.update(json.loads(self.state_path.read_text()))
        self.client: Any = None
        self.pending: list[str] = []
        self.total = 0
        self.finished = False
        self.error: str | None = None

    def _open(self) -> None:
        from qdrant_client import QdrantClient

        self.client = QdrantClient(path=str(self.legacy))
        names = [c.name for c in self.client.get_collections().collections]
        ours = sorted(n for n in names if parse_collection(n) is not None)
        self.total = sum(self.client.count(n, exact=True).count for n in ours)
        self.pending = [n for n in ours if n not in self.state["done"]]
        log.info(
            "migrating %d vectors in %d collections from %s to the embedded index",
            self.total,
            len(ours),
            self.legacy,
        )

    def step(self) -> bool:
        """Copy one batch; False once there is nothing left to do (done or failed)."""
        if self.finished or self.error:
            return False
        try:
            if self.client is None:
                self._open()
            if not self.pending:
                self._finish()
                return False
            self._copy_batch(self.pending[0])
            return True
        except Exception as exc:  # noqa: BLE001 - reported in status; old folder kept
            self.error = (
                f"Moving the vectors of {self.legacy} into the new index failed ({exc}). The "
                "old folder is kept; re-index the knowledge bases to rebuild their vectors."
            )
            log.exception("vector index migration failed")
            return False

    def _copy_batch(self, name: str) -> None:
        offset = self.state["offset"] if self.state["current"] == name else None
        if offset is None:
            vectors = self.client.get_collection(name).config.params.vectors
            self.index.ensure(name, vectors[DENSE].size)
        records, next_offset = self.client.scroll(
            name, limit=BATCH, offset=offset, with_vectors=True, with_payload=True
        )
        points = []
        for record in records:
            vectors = record.vector
            assert isinstance(vectors, dict), "aift stores named vectors"
            sparse = vectors.get(KEYWORDS)
            points.append(
                IndexPoint(
                    id=str(record.id),
                    dense=list(vectors[DENSE]),
                    keyword_indices=list(sparse.indices) if sparse is not None else [],
                    keyword_values=list(sparse.values) if sparse is not None else [],
                    payload=dict(record.payload or {}),
                )
            )
        if points:
            self.index.upsert(name, points)
        self.state["copied"] += len(points)
        if next_offset is None:
            self.pending.pop(0)
            self.state.update(done=[*self.state["done"], name], current=None, offset=None)
        else:
            self.state.update(current=name, offset=str(next_offset))
        self.state_path.write_text(json.dumps(self.state))

    def _finish(self) -> None:
        self.client.close()
        self.client = None
        shutil.rmtree(self.legacy, ignore_errors=True)
        self.state_path.unlink(missing_ok=True)
        self.finished = True
        log.info("vector index migration done: %d vectors moved", self.state["copied"])

    def status(self) -> IndexStatus:
        return IndexStatus(
            migrating=not self.finished and self.error is None,
            migrated_points=min(self.state["copied"], self.total or self.state["copied"]),
            migration_total=self.total,
            error=self.error,
        )
