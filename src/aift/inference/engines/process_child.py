"""The child side of an engine in its own process (`python -m` this module).

It builds the engine, loads the model, then answers the server over a pipe: calls
(tokenize, render a chat, add an adapter…), and generations, whose events it forwards
as they come. If native code here crashes, only this process dies; the server sees the
pipe close and the exit signal (`process.ProcessEngine`). It dies with the server too.

Messages, server → child: ("call", id, method, args), ("submit", id, prompt_ids, params,
adapter), ("cancel", id), ("close",). Child → server: ("loaded", ok, facts | error),
("reply", id, ok, value | error), ("event", id, TokenEvent), ("failed", id, error),
("end", id). An error travels as (class name, message, details).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from aift import threads
from aift.errors import AiftError
from aift.inference.engines.base import GenerationStream
from aift.inference.engines.batching import BatchingEngine
from aift.models.schemas import ResolvedModel
from aift.procutil import exit_with_parent

log = logging.getLogger(__name__)

CALLS = frozenset({"tokenize", "render_chat", "add_adapter"})  # what ProcessEngine asks


def error_payload(exc: BaseException) -> tuple[str, str, Any]:
    """An exception as plain values that cross the pipe."""
    if isinstance(exc, AiftError):
        return (type(exc).__name__, exc.message, exc.details)
    return ("", f"{type(exc).__name__}: {exc}", None)


def build_engine(spec: dict[str, Any]) -> BatchingEngine:
    """The engine the server asked for (llama.cpp is the one run this way)."""
    from aift.inference.engines.llamacpp import LlamaCppEngine

    if spec["engine"] != "llamacpp":
        raise ValueError(f"no isolated engine {spec['engine']!r}")
    options = dict(spec["options"])
    if options.get("cache_dir"):
        options["cache_dir"] = Path(options["cache_dir"])
    return LlamaCppEngine(ResolvedModel.model_validate(spec["model"]), **options)


class _Server:
    """Answers one server's messages for one engine."""

    def __init__(self, engine: BatchingEngine, send: Connection) -> None:
        self.engine = engine
        self._send_conn = send
        self._send_lock = threading.Lock()
        self.streams: dict[int, GenerationStream] = {}

    def send(self, message: tuple) -> None:
        """Send to the server; a server that is gone is not an error here (the receive
        loop ends on its own)."""
        with self._send_lock:
            try:
                self._send_conn.send(message)
            except OSError:
                pass

    def facts(self) -> dict[str, Any]:
        engine = self.engine
        return {
            "context_length": engine.context_length,
            "chat_template": engine.chat_template(),
            "stop_sequences": engine.stop_sequences(),
            "memory_bytes": engine.memory_bytes(),
        }

    def call(self, call_id: int, method: str, args: tuple, kwargs: dict[str, Any]) -> None:
        """Run one call in its own thread (an adapter conversion may take a while)."""

        def answer() -> None:
            try:
                if method not in CALLS:
                    raise ValueError(f"unknown engine call {method!r}")
                value = getattr(self.engine, method)(*args, **kwargs)
                if method == "add_adapter":
                    value = self.engine.memory_bytes()
                self.send(("reply", call_id, True, value))
            except Exception as exc:  # noqa: BLE001 - the server raises it for the caller
                self.send(("reply", call_id, False, error_payload(exc)))

        threading.Thread(target=answer, daemon=True, name=f"call-{method}").start()

    def submit(self, seq_id: int, prompt_ids: list[int], params: Any, adapter: str | None) -> None:
        try:
            stream = self.engine.submit(prompt_ids, params, adapter=adapter)
        except Exception as exc:  # noqa: BLE001 - refused before generating
            self.send(("reply", seq_id, False, error_payload(exc)))
            return
        self.streams[seq_id] = stream
        self.send(("reply", seq_id, True, None))
        threading.Thread(
            target=self._forward, args=(seq_id, stream), daemon=True, name=f"stream-{seq_id}"
        ).start()

    def _forward(self, seq_id: int, stream: GenerationStream) -> None:
        try:
            for event in stream:
                self.send(("event", seq_id, event))
            self.send(("end", seq_id))
        except Exception as exc:  # noqa: BLE001 - the request fails, the engine lives
            self.send(("failed", seq_id, error_payload(exc)))
        finally:
            self.streams.pop(seq_id, None)

    def cancel(self, seq_id: int) -> None:
        stream = self.streams.get(seq_id)
        if stream is not None:
            stream.cancel()


def serve(receive: Connection, send: Connection, spec: dict[str, Any]) -> None:
    """Load the engine, then answer messages until the server closes the pipe."""
    try:
        engine = build_engine(spec)
        engine.load()
    except Exception as exc:  # noqa: BLE001 - the server reports why the load failed
        log.exception("loading failed")
        send.send(("loaded", False, error_payload(exc)))
        return
    server = _Server(engine, send)
    server.send(("loaded", True, server.facts()))
    while True:
        try:
            message = receive.recv()
        except (EOFError, OSError):
            break
        kind = message[0]
        if kind == "call":
            server.call(*message[1:])
        elif kind == "submit":
            server.submit(*message[1:])
        elif kind == "cancel":
            server.cancel(message[1])
        elif kind == "close":
            break
    engine.close()


def main(argv: list[str]) -> None:
    """Entry point: `python -m aift.inference.engines.process_child FD_IN FD_OUT SPEC`."""
    exit_with_parent()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s engine %(message)s")
    spec = json.loads(argv[2])
    threads.apply(threads.ThreadPlan("serve", spec["threads"], 0))
    receive = Connection(int(argv[0]), writable=False)
    send = Connection(int(argv[1]), readable=False)
    serve(receive, send, spec)


if __name__ == "__main__":
    main(sys.argv[1:])
