"""The embedded vector index in a process of its own, owned by the server.

qdrant-edge holds the GIL for the whole of each call (an HNSW build over 10k points
takes about a second), so in the server's own process every optimization would freeze
the event loop, health checks and streamed chat tokens. The server instead starts this
process and talks to it through a pipe (`IndexProcess`, a `VectorIndex`); the server's
threads only wait on the pipe. Between requests the process does its background work:
a migration from the old store, then optimizing freshly written points. The
workspace's other processes (jobs) may search it too, through a Unix socket
(`index_access.py`).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from multiprocessing import AuthenticationError
from multiprocessing.connection import Connection, Listener, wait
from pathlib import Path
from typing import Any

from aift import threads
from aift.config import Settings
from aift.errors import InvalidInput, ServiceUnavailable
from aift.procutil import start_child
from aift.rag.index import IndexPoint, IndexStatus
from aift.rag.index_access import READ_CALLS, RemoteReads, access_paths, write_new_key

log = logging.getLogger(__name__)

IDLE_SECONDS = 0.5  # no request for this long: do a slice of background work
START_TIMEOUT_SECONDS = 120
CALLS = frozenset(
    {
        "ensure",
        "upsert",
        "delete_where",
        "drop",
        "collections",
        "count",
        "search_dense",
        "lowest_dense",
        "cosines",
        "search_keywords",
        "status",
    }
)


def _serve(receive: Connection, send: Connection, options: dict[str, Any]) -> None:
    """The index process: answer calls until the pipe closes or the server is gone."""
    from aift.rag.index_edge import SEGMENT_POINTS, EdgeIndex
    from aift.rag.index_migration import LegacyMigration, legacy_store_present

    parent = os.getppid()
    try:
        index = EdgeIndex(Path(options["root"]), threads=options["threads"])
        index.collections()
    except Exception as exc:  # noqa: BLE001 - reported to the server, which says why
        send.send(("error", "unavailable", f"{type(exc).__name__}: {exc}"))
        return
    legacy = Path(options["legacy"])
    migration = LegacyMigration(legacy, index) if legacy_store_present(legacy) else None
    send.send(("ok", None))

    def status() -> IndexStatus:
        found = index.status()
        if migration is not None:
            moving = migration.status()
            found.migrating = moving.migrating
            found.migrated_points = moving.migrated_points
            found.migration_total = moving.migration_total
            found.error = moving.error
        return found

    stopping: list[int] = []  # SIGTERM (the server is gone): flush the shards and end
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    readers = Readers(options.get("access"), options.get("access_key"))
    working = False  # background work was found last time: look again without waiting
    while not stopping:
        ready = wait([receive, *readers.connections()], 0 if working else IDLE_SECONDS)
        if ready:
            if not _answer(ready, receive, send, readers, index, status):
                break  # the server closed the pipe
            if index.status().unoptimized_points < SEGMENT_POINTS:
                continue  # keep answering; optimize when idle or when the backlog is large
        elif os.getppid() != parent:
            break
        # one bounded slice: an optimization once a segment's worth waits, else a batch
        # of the migration, else whatever is left to optimize
        if index.status().unoptimized_points >= SEGMENT_POINTS:
            working = index.maintain()
        elif migration is not None and migration.step():
            working = True
        else:
            working = index.maintain()
    readers.close()
    index.close()


def _answer(
    ready: list[Any],
    receive: Connection,
    send: Connection,
    readers: Readers,
    index: Any,
    status: Any,
) -> bool:
    """Answer each connection with a call waiting: the server's (any call) and readers'
    (read calls only). False when the server's pipe has closed."""
    for conn in ready:
        try:
            name, args, kwargs = conn.recv()
        except (EOFError, OSError):
            if conn is receive:
                return False
            readers.drop(conn)
            continue
        if conn is receive:
            send.send(_call(index, status, name, args, kwargs))
            continue
        if name not in READ_CALLS:
            reply: tuple = ("error", "invalid", f"{name!r} is not a read call.")
        else:
            reply = _call(index, status, name, args, kwargs)
        try:
            conn.send(reply)
        except OSError:
            readers.drop(conn)
    return True


class Readers:
    """Connections of the workspace's other processes (see index_access.py): accepted by
    a thread, answered by the process's one loop between the server's calls."""

    def __init__(self, address: str | None, key_file: str | None) -> None:
        self.lock = threading.Lock()
        self._connections: list[Connection] = []
        self.listener: Listener | None = None
        if not address or not key_file:
            return
        try:
            Path(address).unlink(missing_ok=True)  # a crashed server's; the index is ours
            key = Path(key_file).read_bytes()
            self.listener = Listener(address, family="AF_UNIX", authkey=key)
            os.chmod(address, 0o600)
        except OSError as exc:  # the server still works; jobs that search say why
            log.warning("the index takes no readers (%s: %s)", type(exc).__name__, exc)
            return
        threading.Thread(target=self._accept, name="index-readers", daemon=True).start()

    def _accept(self) -> None:
        assert self.listener is not None
        while True:
            try:
                conn = self.listener.accept()
            except (AuthenticationError, EOFError, ConnectionError):
                continue  # a caller without the key, or one that hung up: next
            except OSError:
                return  # the listener closed
            with self.lock:
                self._connections.append(conn)

    def connections(self) -> list[Connection]:
        with self.lock:
            return list(self._connections)

    def drop(self, conn: Connection) -> None:
        with self.lock:
            if conn in self._connections:
                self._connections.remove(conn)
        conn.close()

    def close(self) -> None:
        if self.listener is not None:
            address = self.listener.address
            self.listener.close()
            Path(str(address)).unlink(missing_ok=True)
        for conn in self.connections():
            self.drop(conn)


def _call(index: Any, status: Any, name: str, args: tuple, kwargs: dict) -> tuple:
    if name not in CALLS:
        return ("error", "invalid", f"Unknown index call {name!r}.")
    try:
        if name == "status":
            return ("ok", status())
        return ("ok", getattr(index, name)(*args, **kwargs))
    except ServiceUnavailable as exc:
        return ("error", "unavailable", str(exc))
    except ValueError as exc:
        return ("error", "invalid", str(exc))
    except Exception as exc:  # noqa: BLE001 - the server gets the reason, the process lives
        log.exception("index call %s failed", name)
        return ("error", "failed", f"{type(exc).__name__}: {exc}")


class IndexProcess(RemoteReads):
    """The server's side of the index process: a `VectorIndex` whose every call runs in
    the child. Calls from several threads are serialised on the pipe; a child that died
    is started again on the next call."""

    def __init__(self, settings: Settings) -> None:
        index_plan = threads.plan(settings, "index")
        self.options = {
            "root": str(settings.effective_qdrant_path),
            "legacy": str(settings.legacy_qdrant_path),
            "threads": index_plan.threads,
            "niceness": index_plan.niceness,
        }
        address, key_file = access_paths(settings.effective_qdrant_path)
        write_new_key(key_file)  # the workspace's jobs read it to search (index_access.py)
        self.options.update(access=address, access_key=str(key_file))
        self.lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._send: Connection | None = None
        self._receive: Connection | None = None
        with self.lock:
            self._start()

    def _start(self) -> None:
        self._process, self._send, self._receive = start_child(  # SIGTERM: flush, then go
            "aift.rag.index_process", json.dumps(self.options), death_signal=signal.SIGTERM
        )
        reply = self._reply(START_TIMEOUT_SECONDS)
        if reply[0] != "ok":
            self._stop()
            raise ServiceUnavailable(
                f"The vector index cannot be opened ({reply[2]}). Only one aift server may "
                "use a workspace; stop the other one, or set AIFT_QDRANT_URL to share a "
                "Qdrant server."
            )

    def _reply(self, timeout: float | None = None) -> tuple:
        assert self._receive is not None
        if timeout is not None and not self._receive.poll(timeout):
            self._stop()
            raise ServiceUnavailable("The vector index process did not start in time.")
        try:
            return self._receive.recv()
        except (EOFError, OSError):
            code = self._process.wait(timeout=10) if self._process is not None else None
            self._stop()
            raise ServiceUnavailable(
                f"The vector index process ended (exit code {code}); it restarts on the "
                "next request."
            ) from None

    def _call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            if self._process is None or self._process.poll() is not None:
                self._stop()
                self._start()
            assert self._send is not None
            try:
                self._send.send((name, args, kwargs))
            except OSError:
                self._stop()
                raise ServiceUnavailable("The vector index process is gone; retry.") from None
            reply = self._reply()
        if reply[0] == "ok":
            return reply[1]
        _, kind, message = reply
        if kind == "invalid":
            raise InvalidInput(message)
        raise ServiceUnavailable(f"The vector index failed: {message}")

    def ensure(self, name: str, dimension: int) -> None:
        self._call("ensure", name, dimension)

    def upsert(self, name: str, points: list[IndexPoint]) -> None:
        self._call("upsert", name, points)

    def delete_where(self, name: str, key: str, value: str) -> None:
        self._call("delete_where", name, key, value)

    def drop(self, name: str) -> None:
        self._call("drop", name)

    def _stop(self, wait: float = 0.0) -> None:
        for conn in (self._send, self._receive):
            if conn is not None:
                conn.close()
        if self._process is not None:
            try:
                self._process.wait(timeout=wait)  # the child flushes and exits on EOF
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        self._process = self._send = self._receive = None

    def close(self) -> None:
        """Stop the child after it has flushed its shards."""
        with self.lock:
            self._stop(wait=30.0)


def main(argv: list[str]) -> None:
    """Entry point of the index process."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    options = json.loads(argv[2])
    threads.apply(threads.ThreadPlan("index", options["threads"], options["niceness"]))
    receive = Connection(int(argv[0]), writable=False)
    send = Connection(int(argv[1]), readable=False)
    started = time.monotonic()
    _serve(receive, send, options)
    log.debug("index process ran %.0f s", time.monotonic() - started)


if __name__ == "__main__":
    main(sys.argv[1:])
