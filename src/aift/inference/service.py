"""Serving requests: names → leased engines → streams, shared by the OpenAI, Ollama and
platform routes and the CLI."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aift.errors import InvalidInput, NotFound
from aift.inference.embedders import Embedder, load_embedder
from aift.inference.engines.base import GenerationStream
from aift.inference.manager import Lease, ModelManager, names_model
from aift.inference.reward_scoring import RewardScorers
from aift.inference.schemas import (
    ChatMessage,
    GenerationStats,
    RewardScoreRequest,
    RewardScores,
    SamplingParams,
    TokenEvent,
    TokenLogprob,
    ToolCall,
)
from aift.inference.tools import (
    CallFormat,
    ToolStream,
    chosen,
    functions,
    parse_calls,
    required_call,
)
from aift.models.schemas import ModelInfo, ModelKind
from aift.monitoring import metrics


@dataclass
class ToolPlan:
    """How a generation's text is read for tool calls: the template's call format and
    the request's tool names."""

    form: CallFormat
    names: set[str]


@dataclass
class Piece:
    """Part of a reply as a client sees it: text, its tokens' log-probabilities, and
    (in the last piece only) the tool calls the model made."""

    text: str
    logprobs: list[TokenLogprob]
    calls: list[ToolCall] = field(default_factory=list)


@dataclass
class Collected:
    """A whole reply: the text without tool-call markup, the calls, the log-probabilities."""

    text: str
    calls: list[ToolCall]
    logprobs: list[TokenLogprob]


class Generation:
    """A started generation: its stream, the model lease it holds, and timing."""

    def __init__(
        self,
        lease: Lease,
        stream: GenerationStream,
        load_ms: float,
        tools: ToolPlan | None = None,
    ) -> None:
        self.lease = lease
        self.stream = stream
        self.load_ms = load_ms
        self.tools = tools
        self.started = time.perf_counter()
        self._released = False

    @property
    def model(self) -> str:
        """The registry name this generation serves (the adapter's, when one is applied)."""
        return self.lease.adapter or self.lease.name

    async def events(self) -> AsyncIterator[TokenEvent]:
        """Token events until the end; the model is released however the loop ends.
        Each generation is counted in the model metrics (tokens, time to first token,
        decode speed, how it ended)."""
        outcome = "cancelled"
        first = True
        try:
            async for event in self.stream:
                if first and event.text:
                    first = False
                    ttft = time.perf_counter() - self.started + self.load_ms / 1000
                    metrics.model_ttft.labels(self.model).observe(ttft)
                if event.finish_reason is not None:
                    outcome = str(event.finish_reason)
                    if event.stats is not None:
                        self._count(event.stats)
                yield event
        except Exception:
            outcome = "error"
            raise
        finally:
            metrics.model_requests.labels(self.model, outcome).inc()
            self.close()

    async def pieces(self) -> AsyncIterator[Piece]:
        """What a client may show as it comes: each event's text with tool-call markup
        held back (when the request has tools), then a last piece with the text held
        back that was no call and the calls found. Shared by the OpenAI and Ollama
        routes' streams."""
        watch = ToolStream(self.tools.form, self.tools.names) if self.tools is not None else None
        async for event in self.events():
            shown = watch.feed(event.text) if watch is not None else event.text
            yield Piece(shown, event.logprobs or [])
        if watch is not None:
            rest, calls = watch.finish()
            if rest or calls:
                yield Piece(rest, [], calls)

    async def collect(self) -> Collected:
        """The whole reply at the end: its text (tool calls parsed out of it when the
        request has tools), the calls and every token's log-probabilities."""
        parts: list[str] = []
        logprobs: list[TokenLogprob] = []
        async for event in self.events():
            parts.append(event.text)
            logprobs += event.logprobs or []
        text = "".join(parts)
        calls: list[ToolCall] = []
        if self.tools is not None:
            text, calls = parse_calls(text, self.tools.form, self.tools.names)
        return Collected(text, calls, logprobs)

    def _count(self, stats: GenerationStats) -> None:
        name = self.model
        metrics.model_prompt_tokens.labels(name).inc(stats.prompt_tokens)
        metrics.model_generated_tokens.labels(name).inc(stats.completion_tokens)
        if stats.completion_tokens > 1 and stats.decode_ms > 0:
            speed = stats.completion_tokens / (stats.decode_ms / 1000)
            metrics.model_tokens_per_second.labels(name).observe(speed)

    def close(self) -> None:
        """Stop generating (if still running) and give the model back; safe to repeat."""
        self.stream.cancel()
        self.release()

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.lease.release()


class ServingService:
    """Runs chat, completion and embedding requests against managed models."""

    def __init__(self, manager: ModelManager) -> None:
        self.manager = manager
        self._embedders: dict[str, Embedder] = {}
        self._embed_lock = threading.Lock()
        self.reward_models = RewardScorers(manager.registry)

    def score_replies(self, model: str, request: RewardScoreRequest) -> RewardScores:
        """A reward model's score of each reply (loaded on first use)."""
        scorer = self.reward_models.get(model)
        return RewardScores(
            model=scorer.name, scores=scorer.score(request.messages, request.replies)
        )

    def chat(
        self,
        model: str,
        messages: list[ChatMessage],
        params: SamplingParams,
        *,
        keep_alive: str | float | None = "default",
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | dict[str, Any] | None = None,
    ) -> Generation:
        """Start the assistant's reply to `messages` with `model`; with `tools`, through
        the model's chat template (refused, saying why, when it cannot show them), a
        call forced by the format when `tool_choice` requires one."""
        if not tools or tool_choice == "none":
            return self._start(
                model,
                keep_alive,
                lambda lease: lease.engine.chat(messages, params, adapter=lease.adapter),
            )
        specs = functions(tools)
        required = chosen(tool_choice, list(specs))
        if required and params.structured is not None:
            raise InvalidInput("A required tool call and response_format cannot be combined.")
        plan: ToolPlan | None = None

        def begin(lease: Lease) -> GenerationStream:
            nonlocal plan
            reason = lease.engine.tool_support()
            if reason is not None:
                raise InvalidInput(reason)
            form = lease.engine.call_format()
            wanted = params
            if required:
                structured = required_call(form, specs, required)
                wanted = params.model_copy(update={"structured": structured})
            plan = ToolPlan(form, set(specs))
            return lease.engine.chat(messages, wanted, adapter=lease.adapter, tools=tools)

        generation = self._start(model, keep_alive, begin)
        generation.tools = plan
        return generation

    def chat_trimmed(
        self,
        model: str,
        messages_for: Callable[[int], list[ChatMessage]],
        most: int,
        params: SamplingParams,
        *,
        keep_alive: str | float | None = "default",
    ) -> tuple[Generation, int]:
        """Start a reply to `messages_for(n)` with the largest n ≤ `most` whose prompt
        leaves `max_tokens` in the model's context (at least 1), and say which n: a
        prompt built from many pieces (RAG sources) shrinks to the model instead of
        being refused. Engines that cannot count tokens get all `most`."""
        used = most

        def begin(lease: Lease) -> GenerationStream:
            nonlocal used
            engine, room = lease.engine, lease.engine.context_length - (params.max_tokens or 0)
            while used > 1:
                tokens = engine.chat_prompt_tokens(messages_for(used))
                if tokens is None or tokens <= room:
                    break
                used -= 1
            return engine.chat(messages_for(used), params, adapter=lease.adapter)

        generation = self._start(model, keep_alive, begin)
        return generation, used

    def complete(
        self,
        model: str,
        prompt: str,
        params: SamplingParams,
        *,
        keep_alive: str | float | None = "default",
    ) -> Generation:
        """Start a raw continuation of `prompt` with `model`."""
        return self._start(
            model,
            keep_alive,
            lambda lease: lease.engine.generate(prompt, params, adapter=lease.adapter),
        )

    def _start(
        self, model: str, keep_alive: str | float | None, begin: Callable[[Lease], GenerationStream]
    ) -> Generation:
        started = time.perf_counter()
        lease = self.manager.acquire(model, keep_alive=keep_alive)
        try:
            stream = begin(lease)
        except BaseException:
            lease.release()
            raise
        return Generation(lease, stream, (time.perf_counter() - started) * 1000)

    def describe(self, name: str) -> ModelInfo:
        """Registry entry of any model a request may name (language or embedding)."""
        for model in self.embedding_models():
            if names_model(model, name):
                return model
        return self.manager.describe(name)

    def embedding_models(self) -> list[ModelInfo]:
        return self.manager.registry.list(ModelKind.embedding)

    def embedder(self, name: str) -> Embedder:
        """The embedding backend of `name`, loaded once."""
        with self._embed_lock:
            if name in self._embedders:
                return self._embedders[name]
            models = self.embedding_models()
            match = next((m for m in models if names_model(m, name)), None)
            if match is None:
                if any(m.name == name for m in self.manager.servable()):
                    raise InvalidInput(f"{name} is a language model, not an embedding model.")
                known = ", ".join(m.name for m in models) or "none"
                raise NotFound(f"Embedding model {name!r} is not available. Available: {known}.")
            embedder = load_embedder(match)
            self._embedders[name] = embedder
            return embedder

    def embed(
        self, name: str, texts: list[str], *, is_query: bool = False
    ) -> tuple[list[list[float]], int]:
        """Vectors for `texts` and the number of tokens they held."""
        from aift.inference.engines.ollama import PREFIX

        if name.startswith(PREFIX):  # a remote Ollama embedding model
            lease = self.manager.acquire(name)
            try:
                return lease.engine.embed(texts), sum(len(t.split()) for t in texts)
            finally:
                lease.release()
        embedder = self.embedder(name)
        return embedder.embed(texts, is_query=is_query), embedder.count_tokens(texts)

    def embed_token_ids(self, name: str, inputs: list[list[int]]) -> tuple[list[list[float]], int]:
        """Vectors for inputs given as token ids of the embedding model's own vocabulary."""
        from aift.inference.engines.ollama import PREFIX

        if name.startswith(PREFIX):
            raise InvalidInput(f"{name} is served by Ollama, which takes text only; send text.")
        embedder = self.embedder(name)
        texts = [embedder.decode(ids) for ids in inputs]
        return embedder.embed(texts), sum(len(ids) for ids in inputs)
