"""An engine whose native code runs in a child process, so a crash there costs one model.

llama.cpp is C++: an illegal instruction, a segfault or an abort inside it kills the
process it runs in. In the server's own process that would be every model, every
WebSocket and the job supervisor with it. `ProcessEngine` therefore hosts the engine in
a child (`process_child`) and talks to it over a pipe: calls wait for their reply,
generations stream their token events back. When the child dies, every waiting call and
open stream fails with `EngineCrashed` naming the engine and the signal, the engine is
marked failed (the model manager shows it and loads it again on the next request), and
the server goes on.

Token events are small and the child samples, so the pipe adds well under a
millisecond per token (benchmarks/llamacpp_portable.py measures it).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from dataclasses import dataclass, field
from typing import Any

from aift.errors import AiftError, ModelUnavailable
from aift.inference.engines.base import (
    Engine,
    EngineError,
    GenerationStream,
    Sequence,
    fail_sequence,
    new_sequence,
)
from aift.inference.schemas import ChatMessage, SamplingParams, TokenEvent
from aift.models.schemas import ResolvedModel
from aift.monitoring import metrics
from aift.native.llamacpp_backend import signal_name
from aift.procutil import start_child

log = logging.getLogger(__name__)

LOAD_TIMEOUT_SECONDS = 600.0  # a first load may probe the CPU and map a large file
CLOSE_SECONDS = 15.0


class EngineCrashed(EngineError):
    """The process running a model's native code died; the model must be loaded again."""

    status_code = 503
    code = "engine_crashed"


@dataclass
class _Waiter:
    """A call waiting for its reply."""

    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False
    value: Any = None


def rebuild_error(payload: tuple[str, str, Any]) -> AiftError:
    """The exception a child reported, as the same aift error type where there is one."""
    name, message, details = payload
    for kind in _aift_errors(AiftError):
        if kind.__name__ == name:
            return kind(message, details=details)
    return EngineError(f"Generation failed: {message}")


def _aift_errors(root: type[AiftError]) -> list[type[AiftError]]:
    found = [root]
    for sub in root.__subclasses__():
        found += _aift_errors(sub)
    return found


class _ProcessStream(GenerationStream):
    """A generation in the child: cancelling it tells the child."""

    def __init__(self, seq: Sequence, engine: ProcessEngine) -> None:
        super().__init__(seq)
        self._engine = engine

    def cancel(self) -> None:
        super().cancel()
        if not self._seq.finished:
            self._engine._send_quietly(("cancel", self._seq.id))


class ProcessEngine(Engine):
    """An engine of kind `kind` running in a child process (same interface as in-process)."""

    supports_adapters = True

    def __init__(
        self, model: ResolvedModel, *, kind: str, options: dict[str, Any], threads: int
    ) -> None:
        super().__init__(model)
        self.name = kind  # type: ignore[misc]  # reported as the engine it hosts
        self._spec = {
            "engine": kind,
            "model": model.model_dump(mode="json"),
            "options": options,
            "threads": threads,
        }
        self._process: Any = None
        self._send: Any = None
        self._receive: Any = None
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._next_id = 0
        self._waiters: dict[int, _Waiter] = {}
        self._streams: dict[int, Sequence] = {}
        self._facts: dict[str, Any] = {}
        self._memory = 0
        self._failure: EngineCrashed | None = None
        self._closing = False

    # -- life ---------------------------------------------------------------------------
    def load(self) -> None:
        """Start the child and wait until it has loaded the model."""
        self._process, self._send, self._receive = start_child(
            "aift.inference.engines.process_child", json.dumps(self._spec)
        )
        if not self._receive.poll(LOAD_TIMEOUT_SECONDS):
            self.close()
            raise ModelUnavailable(
                f"{self.model.name} did not load in {LOAD_TIMEOUT_SECONDS:.0f} s."
            )
        try:
            _, ok, value = self._receive.recv()
        except (EOFError, OSError):
            code = self._process.wait(timeout=30)
            self.close()
            raise ModelUnavailable(
                f"The {self.name} engine died while loading {self.model.name} "
                f"({_exit_text(code)}). Run `aift doctor` to check this machine."
            ) from None
        if not ok:
            self.close()
            raise rebuild_error(value)
        self._facts = value
        self.context_length = int(value["context_length"])
        self._memory = int(value["memory_bytes"])
        threading.Thread(
            target=self._read, daemon=True, name=f"engine-pipe-{self.model.name}"
        ).start()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def failure(self) -> str | None:
        return self._failure.message if self._failure is not None else None

    def close(self) -> None:
        """Stop the child (its requests end as cancelled) and wait for it."""
        self._closing = True
        self._send_quietly(("close",))
        if self._process is not None:
            try:
                self._process.wait(timeout=CLOSE_SECONDS)
            except Exception:  # noqa: BLE001 - it would not stop: make it
                self._process.kill()
                self._process.wait(timeout=10)
        for conn in (self._send, self._receive):
            if conn is not None:
                conn.close()
        self._fail_everything(EngineError(f"{self.model.name} was unloaded."))

    # -- the pipe -----------------------------------------------------------------------
    def _send_quietly(self, message: tuple) -> bool:
        with self._send_lock:
            if self._send is None or self._failure is not None:
                return False
            try:
                self._send.send(message)
                return True
            except (OSError, ValueError):
                return False

    def _read(self) -> None:
        """Route the child's messages until it ends; a death fails what was waiting."""
        while True:
            try:
                message = self._receive.recv()
            except (EOFError, OSError, ValueError):
                break
            self._dispatch(message)
        if not self._closing:
            self._died()

    def _dispatch(self, message: tuple) -> None:
        kind, ident = message[0], message[1]
        if kind == "reply":
            with self._lock:
                waiter = self._waiters.pop(ident, None)
            if waiter is not None:
                waiter.ok, waiter.value = message[2], message[3]
                waiter.done.set()
            return
        with self._lock:
            seq = self._streams.get(ident)
            if seq is not None and kind in ("end", "failed"):
                del self._streams[ident]
        if seq is None:
            return
        if kind == "event":
            event: TokenEvent = message[2]
            seq.out.put(event)
        elif kind == "end":
            seq.finished = True
            seq.out.put(None)
        elif kind == "failed":
            fail_sequence(seq, rebuild_error(message[2]))

    def _died(self) -> None:
        code = self._process.wait(timeout=30)
        self._failure = EngineCrashed(
            f"The {self.name} engine serving {self.model.name} crashed ({_exit_text(code)}); "
            "its requests failed and the model is marked failed. The next request loads it "
            "again; if it crashes again, run `aift doctor`.",
            details={"engine": self.name, "model": self.model.name, "exit": _exit_text(code)},
        )
        log.error("%s", self._failure.message)
        metrics.engine_crashes.labels(self.name, _signal_label(code)).inc()
        self._fail_everything(self._failure)

    def _fail_everything(self, error: AiftError) -> None:
        with self._lock:
            waiters, self._waiters = list(self._waiters.values()), {}
            streams, self._streams = list(self._streams.values()), {}
        for waiter in waiters:
            waiter.ok, waiter.value = False, error
            waiter.done.set()
        for seq in streams:
            fail_sequence(seq, error)

    def _new_ident(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id

    def _ask(self, message_kind: str, *payload: Any, ident: int | None = None) -> Any:
        """Send a message that gets a reply; wait for it (or for the child's death)."""
        if self._failure is not None:
            raise self._failure
        waiter = _Waiter()
        ident = ident if ident is not None else self._new_ident()
        with self._lock:
            self._waiters[ident] = waiter
        if not self._send_quietly((message_kind, ident, *payload)):
            with self._lock:
                self._waiters.pop(ident, None)
            raise self._failure or EngineError(f"{self.model.name} is not loaded.")
        waiter.done.wait()
        if waiter.ok:
            return waiter.value
        if isinstance(waiter.value, AiftError):
            raise waiter.value
        raise rebuild_error(waiter.value)

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._ask("call", method, args, kwargs)

    # -- the engine interface -------------------------------------------------------------
    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        return self._call("tokenize", text, special=special)

    def render_chat(
        self, messages: list[ChatMessage], tools: list[dict[str, Any]] | None = None
    ) -> str:
        return self._call("render_chat", messages, tools)

    def chat_template(self) -> str | None:
        return self._facts.get("chat_template")

    def stop_sequences(self) -> list[str]:
        return list(self._facts.get("stop_sequences", []))

    def add_adapter(self, name: str, path: str) -> None:
        if name in self.adapters:
            return
        self._memory = int(self._call("add_adapter", name, path))
        self.adapters[name] = path

    def submit(
        self, prompt_ids: list[int], params: SamplingParams, *, adapter: str | None = None
    ) -> GenerationStream:
        """Start a generation in the child; refusals (too long, unknown adapter) raise here."""
        seq = new_sequence(prompt_ids, params, adapter)
        seq.id = self._new_ident()
        with self._lock:
            self._streams[seq.id] = seq  # before the child can send its first event
        try:
            self._ask("submit", list(prompt_ids), params, adapter, ident=seq.id)
        except AiftError:
            with self._lock:
                self._streams.pop(seq.id, None)
            raise
        return _ProcessStream(seq, self)

    def memory_bytes(self) -> int:
        return 0 if self._failure is not None else self._memory

    @property
    def busy(self) -> int:
        with self._lock:
            return len(self._streams)


def _signal_label(code: int | None) -> str:
    """SIGILL for a death by signal 4; 'exit' for a process that exited by itself."""
    if code is None or code >= 0:
        return "exit"
    try:
        return signal.Signals(-code).name
    except ValueError:
        return str(-code)


def _exit_text(code: int | None) -> str:
    """How a child ended, for people: 'killed by SIGILL (illegal instruction)'."""
    if code is None:
        return "still running"
    if code < 0:
        return f"killed by {signal_name(-code)}"
    return f"exit code {code}"
