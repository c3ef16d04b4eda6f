"""Models on a remote Ollama server, through the official `ollama` client.

The remote applies its own templates and batching; this engine streams its answers into
aift's streams, so `ollama/NAME` models are served by every aift API like local ones.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from aift.config import mask_url, redact_url
from aift.errors import CapabilityMissing, InvalidInput, ServiceUnavailable
from aift.inference.engines import EngineSource, register_engine
from aift.inference.engines.base import (
    Engine,
    GenerationStream,
    Sequence,
    fail_sequence,
    finish_sequence,
    new_sequence,
)
from aift.inference.schemas import (
    ChatMessage,
    FinishReason,
    GenerationStats,
    SamplingParams,
    TokenEvent,
)
from aift.inference.tools import CallFormat
from aift.models.schemas import ModelFormat

if TYPE_CHECKING:
    import ollama

    from aift.models.schemas import ResolvedModel

log = logging.getLogger(__name__)

PREFIX = "ollama/"


def _chat_text(chunk: Any) -> str:
    """A chat chunk's text; the calls Ollama parsed are written as `<tool_call>` text,
    which the serving layer parses back into tool_calls like any model's."""
    text = chunk.message.content or ""
    for call in chunk.message.tool_calls or []:
        body = {"name": call.function.name, "arguments": dict(call.function.arguments or {})}
        text += f"<tool_call>{json.dumps(body)}</tool_call>"
    return text


def ollama_format(params: SamplingParams) -> str | dict | None:
    """Ollama's `format` for a structured-output request: "json" or a JSON schema (it
    has no regex or grammar constraint)."""
    wanted = params.structured
    if wanted is None:
        return None
    if wanted.type == "json_object":
        return "json"
    if wanted.type == "json_schema":
        return wanted.json_schema
    raise CapabilityMissing(
        f"Ollama constrains output to JSON only; a {wanted.type} format (or a required tool "
        "call) needs a model served here (llamacpp or transformers)."
    )


def to_ollama_options(params: SamplingParams) -> dict[str, Any]:
    """aift's sampling parameters as Ollama `options`."""
    options: dict[str, Any] = {"temperature": params.temperature, "top_p": params.top_p}
    if params.top_k:
        options["top_k"] = params.top_k
    if params.max_tokens is not None:
        options["num_predict"] = params.max_tokens
    if params.stop:
        options["stop"] = list(params.stop)
    if params.seed is not None:
        options["seed"] = params.seed
    if params.repetition_penalty != 1.0:
        options["repeat_penalty"] = params.repetition_penalty
    if params.frequency_penalty:
        options["frequency_penalty"] = params.frequency_penalty
    if params.presence_penalty:
        options["presence_penalty"] = params.presence_penalty
    return options


def stats_from(chunk: Any) -> GenerationStats:
    """Ollama's final counters (nanoseconds) as aift's stats (milliseconds)."""

    def ms(name: str) -> float:
        return (getattr(chunk, name, None) or 0) / 1e6

    return GenerationStats(
        prompt_tokens=getattr(chunk, "prompt_eval_count", None) or 0,
        completion_tokens=getattr(chunk, "eval_count", None) or 0,
        prompt_ms=ms("prompt_eval_duration"),
        decode_ms=ms("eval_duration"),
        total_ms=ms("total_duration"),
    )


def client_for(host: str) -> ollama.Client:
    import ollama

    return ollama.Client(host=host, timeout=600)


class OllamaEngine(Engine):
    """A model served by a remote Ollama; requests stream through the official client."""

    name = "ollama"

    def __init__(self, model: ResolvedModel, *, host: str, remote_name: str) -> None:
        super().__init__(model)
        self.host = host
        self.remote_name = remote_name
        self._client: Any = None  # an ollama.Client, set by load()
        self._running: set[int] = set()
        self._sequences: list[Sequence] = []
        self._lock = threading.Lock()

    def load(self) -> None:
        import ollama

        self._client = client_for(self.host)
        try:
            shown = self._client.show(self.remote_name)
        except ollama.ResponseError as exc:
            raise InvalidInput(
                f"The Ollama server at {mask_url(self.host)} has no model {self.remote_name!r} "
                f"({exc.error}). Pull it first: `aift models pull ollama/{self.remote_name}`."
            ) from None
        except Exception as exc:  # noqa: BLE001 - connection failures of every kind
            raise ServiceUnavailable(
                redact_url(f"Cannot reach Ollama at {self.host}: {exc}", self.host)
            ) from None
        info = shown.modelinfo or {}
        lengths = [v for k, v in info.items() if k.endswith(".context_length")]
        self.context_length = int(lengths[0]) if lengths else 4096

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        raise CapabilityMissing("Token ids are not available from a remote Ollama model.")

    def render_chat(
        self, messages: list[ChatMessage], tools: list[dict[str, Any]] | None = None
    ) -> str:
        raise CapabilityMissing("The remote Ollama server applies its own chat template.")

    def submit(
        self, prompt_ids: list[int], params: SamplingParams, *, adapter: str | None = None
    ) -> GenerationStream:
        raise CapabilityMissing("A remote Ollama model takes text, not token ids.")

    def generate(
        self, prompt: str, params: SamplingParams, *, adapter: str | None = None
    ) -> GenerationStream:
        self._no_adapter(adapter)
        return self._start(
            params,
            lambda: self._client.generate(
                model=self.remote_name,
                prompt=prompt,
                raw=True,
                stream=True,
                options=to_ollama_options(params),
                format=ollama_format(params),
            ),
            lambda chunk: chunk.response or "",
        )

    def tool_support(self) -> str | None:
        return None  # Ollama renders the tools with its own template and parses the calls

    def call_format(self) -> CallFormat:
        return "hermes"  # how this engine writes Ollama's parsed calls into its text

    def chat(
        self,
        messages: list[ChatMessage],
        params: SamplingParams,
        *,
        adapter: str | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> GenerationStream:
        self._no_adapter(adapter)
        if not messages:
            raise InvalidInput("messages must not be empty.")
        payload = [m.template_view() for m in messages]
        return self._start(
            params,
            lambda: self._client.chat(
                model=self.remote_name,
                messages=payload,
                tools=tools or None,
                stream=True,
                options=to_ollama_options(params),
                format=ollama_format(params),
            ),
            _chat_text,
        )

    def embed(self, texts: list[str]) -> list[list[float]]:
        return [list(v) for v in self._client.embed(model=self.remote_name, input=texts).embeddings]

    def _no_adapter(self, adapter: str | None) -> None:
        if adapter is not None:
            raise InvalidInput("Adapters cannot be applied to a remote Ollama model.")

    def _start(
        self, params: SamplingParams, call: Callable[[], Iterator], text_of: Callable[[Any], str]
    ) -> GenerationStream:
        if params.logprobs is not None:
            raise CapabilityMissing(
                "Log-probabilities of a remote Ollama model are not reported yet; leave out "
                "logprobs or serve the model here."
            )
        seq = new_sequence([], params)
        with self._lock:
            self._sequences.append(seq)
        threading.Thread(
            target=self._pump,
            args=(seq, call, text_of),
            daemon=True,
            name=f"ollama-{self.remote_name}",
        ).start()
        return GenerationStream(seq)

    def _pump(
        self, seq: Sequence, call: Callable[[], Iterator], text_of: Callable[[Any], str]
    ) -> None:
        started = time.perf_counter()
        last = None
        try:
            for chunk in call():
                if seq.cancelled.is_set():
                    finish_sequence(seq, FinishReason.cancelled, GenerationStats())
                    return
                text = text_of(chunk)
                if text:
                    seq.out.put_nowait(TokenEvent(text=text))
                last = chunk
            reason = (
                FinishReason.length
                if getattr(last, "done_reason", "") == "length"
                else FinishReason.stop
            )
            stats = stats_from(last) if last is not None else GenerationStats()
            stats.queue_ms = 0.0
            stats.total_ms = stats.total_ms or (time.perf_counter() - started) * 1000
            finish_sequence(seq, reason, stats)
        except Exception as exc:  # noqa: BLE001 - the reader sees the error
            message = redact_url(f"Ollama at {self.host} failed: {exc}", self.host)
            fail_sequence(seq, ServiceUnavailable(message))
        finally:
            with self._lock:
                if seq in self._sequences:
                    self._sequences.remove(seq)

    @property
    def busy(self) -> int:
        with self._lock:
            return sum(1 for seq in self._sequences if not seq.finished)

    def memory_bytes(self) -> int:
        return 0  # held by the remote server

    def close(self) -> None:
        with self._lock:
            for seq in self._sequences:
                seq.cancelled.set()


@register_engine("ollama", formats=(ModelFormat.ollama,), preference=10)
def _build(source: EngineSource) -> OllamaEngine:
    """A model of a remote Ollama server, which runs it (the URL with its credentials
    comes from the settings; the model's listed path shows it masked)."""
    host = source.settings.ollama_url or source.info.path
    return OllamaEngine(source.resolved, host=host, remote_name=source.info.details["remote"])
