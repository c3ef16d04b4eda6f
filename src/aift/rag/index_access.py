"""Read access to the server's embedded vector index from the workspace's other
processes (jobs: an answer evaluation searches a knowledge base like a user does).

The embedded engine's folders belong to one process, the server's index process
(`index_process.py`). Besides its pipe to the server, that process listens on a Unix
socket for read calls (searches, counts, status) — never writes, which stay with the
server's syncer. A caller proves it belongs to the workspace with a random key the
server writes (mode 0600) next to the index folder each time it starts the process;
`multiprocessing.connection`'s HMAC challenge checks it, so the key never travels.
With a Qdrant server (AIFT_QDRANT_URL) every process opens the index itself instead.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import tempfile
import threading
from collections.abc import Iterable
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection
from pathlib import Path
from typing import Any

from aift.errors import InvalidInput, ServiceUnavailable
from aift.rag.index import ChunkFilter, IndexHit, IndexPoint, IndexStatus

READ_CALLS = frozenset(
    {"collections", "count", "search_dense", "lowest_dense", "cosines", "search_keywords", "status"}
)
KEY_BYTES = 32


def access_paths(root: Path) -> tuple[str, Path]:
    """(socket address, key file) of the index in folder `root`. The socket lives in the
    temp folder (a Unix socket's path must stay short), named after the index folder."""
    digest = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    address = str(Path(tempfile.gettempdir()) / f"aift-index-{digest}.sock")
    return address, root.parent / f".{root.name}.access-key"


def write_new_key(key_file: Path) -> None:
    """A fresh random key, readable by this user only."""
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.unlink(missing_ok=True)
    handle = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(handle, "wb") as out:
        out.write(secrets.token_bytes(KEY_BYTES))


class RemoteReads:
    """The read calls of a `VectorIndex` whose work runs in another process: each is
    sent through `_call` (the server's pipe, or a reader's socket)."""

    def _call(self, name: str, *args: Any) -> Any:
        raise NotImplementedError

    def collections(self) -> list[str]:
        return self._call("collections")

    def count(self, name: str, where: ChunkFilter | None = None) -> int:
        return self._call("count", name, where)

    def search_dense(
        self, name: str, vector: list[float], limit: int, where: ChunkFilter | None = None
    ) -> list[IndexHit]:
        return self._call("search_dense", name, vector, limit, where)

    def lowest_dense(
        self, name: str, vector: list[float], where: ChunkFilter | None = None
    ) -> float | None:
        return self._call("lowest_dense", name, vector, where)

    def cosines(self, name: str, vector: list[float], ids: Iterable[str]) -> dict[str, float]:
        return self._call("cosines", name, vector, list(ids))

    def search_keywords(
        self,
        name: str,
        indices: list[int],
        values: list[float],
        limit: int,
        where: ChunkFilter | None = None,
    ) -> list[IndexHit]:
        return self._call("search_keywords", name, indices, values, limit, where)

    def status(self) -> IndexStatus:
        return self._call("status")


class IndexReader(RemoteReads):
    """A `VectorIndex` for reading, whose calls run in the server's index process."""

    def __init__(self, root: Path) -> None:
        self.address, self.key_file = access_paths(root)
        self.lock = threading.Lock()
        self._conn: Connection | None = None

    def _connect(self) -> Connection:
        try:
            key = self.key_file.read_bytes()
            return Client(self.address, family="AF_UNIX", authkey=key)
        except (OSError, EOFError, AuthenticationError) as exc:
            raise ServiceUnavailable(
                "The knowledge bases' vector index is served by the aift server, which is "
                f"not reachable from here ({type(exc).__name__}); start the server, or set "
                "AIFT_QDRANT_URL to share a Qdrant server."
            ) from None

    def _call(self, name: str, *args: Any) -> Any:
        with self.lock:
            if self._conn is None:
                self._conn = self._connect()
            try:
                self._conn.send((name, args, {}))
                reply = self._conn.recv()
            except (OSError, EOFError):
                self._conn = None
                raise ServiceUnavailable("The vector index went away; retry.") from None
        if reply[0] == "ok":
            return reply[1]
        _, kind, message = reply
        if kind == "invalid":
            raise InvalidInput(message)
        raise ServiceUnavailable(f"The vector index failed: {message}")

    def _read_only(self) -> None:
        raise InvalidInput("The vector index is read-only outside the aift server.")

    def ensure(self, name: str, dimension: int) -> None:
        self._read_only()

    def upsert(self, name: str, points: list[IndexPoint]) -> None:
        self._read_only()

    def delete_where(self, name: str, key: str, value: str) -> None:
        self._read_only()

    def drop(self, name: str) -> None:
        self._read_only()

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
