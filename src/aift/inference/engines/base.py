"""The engine interface: what every engine does with one loaded model.

Requests become *sequences*; each streams its text through a `GenerationStream`. The
batching scheduler the CPU engines share is in `batching.py`; engines that batch
themselves (vLLM, a remote Ollama, a child process) implement this interface directly.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from aift.errors import AiftError, CapabilityMissing, InvalidInput
from aift.inference.sampling import StopMatcher
from aift.inference.schemas import (
    ChatMessage,
    FinishReason,
    GenerationStats,
    SamplingParams,
    TokenEvent,
    TokenLogprob,
)
from aift.inference.tools import CallFormat, call_format
from aift.models.schemas import ResolvedModel

log = logging.getLogger(__name__)


class EngineError(AiftError):
    """The engine failed while generating (not the request's fault)."""

    status_code = 500
    code = "engine_error"


class PromptTooLong(AiftError):
    """The prompt (plus the tokens asked for) does not fit the model's context."""

    status_code = 400
    code = "context_length_exceeded"


@dataclass
class Sequence:
    """One request inside an engine: its tokens, sampling state and output queue."""

    id: int
    prompt_ids: list[int]
    params: SamplingParams
    adapter: str | None
    max_new_tokens: int
    rng: np.random.Generator
    stop: StopMatcher
    out: queue.Queue = field(default_factory=queue.Queue)
    generated: list[int] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)
    finished: bool = False
    constraint: Any = None  # a TokenConstraint when the output must follow a format
    logprobs: list[TokenLogprob] = field(default_factory=list)  # not yet emitted
    slot: Any = None  # engine-specific place of this sequence (KV slot, batch row)
    detok: Any = None  # engine-specific incremental detokenizer state
    cached_tokens: int = 0  # prompt tokens whose KV came from an earlier request
    draft: list[int] = field(default_factory=list)  # tokens fed to be verified this step
    draft_size: int = 2  # tokens the next draft may hold (grows while drafts are right)
    drafted_tokens: int = 0  # draft tokens fed so far (speculative decoding)
    accepted_tokens: int = 0  # of those, the ones the model chose too
    submitted_at: float = field(default_factory=time.perf_counter)
    started_at: float = 0.0
    first_token_at: float = 0.0

    @property
    def last_token(self) -> int:
        return self.generated[-1]


_DONE = object()


class GenerationStream:
    """The text of one request as it is generated; iterate it (sync or async)."""

    def __init__(self, seq: Sequence) -> None:
        self._seq = seq
        self.stats: GenerationStats | None = None
        self.finish_reason: FinishReason | None = None

    def _next(self, timeout: float | None = None) -> TokenEvent | None:
        """The next event; None once the sequence has ended."""
        item = self._seq.out.get(timeout=timeout)
        if isinstance(item, BaseException):
            raise item
        if not isinstance(item, TokenEvent):  # _DONE
            return None
        if item.finish_reason is not None:
            self.stats, self.finish_reason = item.stats, item.finish_reason
        return item

    def __iter__(self) -> Iterator[TokenEvent]:
        while True:
            item = self._next()
            if item is None:
                return
            yield item

    async def __aiter__(self) -> AsyncIterator[TokenEvent]:
        try:
            while True:
                item = await asyncio.to_thread(self._next)
                if item is None:
                    return
                yield item
        finally:
            if not self._seq.finished:
                self.cancel()

    def cancel(self) -> None:
        """Stop generating for this request; its slot is freed at the next step."""
        self._seq.cancelled.set()

    def text(self) -> str:
        """Wait for the end and return the whole text."""
        return "".join(event.text for event in self)


def new_sequence(
    prompt_ids: list[int],
    params: SamplingParams,
    adapter: str | None = None,
    max_new_tokens: int = 0,
) -> Sequence:
    """A sequence for engines that generate elsewhere (a remote server, vLLM's loop)."""
    return Sequence(
        id=0,
        prompt_ids=list(prompt_ids),
        params=params,
        adapter=adapter,
        max_new_tokens=max_new_tokens,
        rng=np.random.default_rng(params.seed),
        stop=StopMatcher(params.stop),
    )


def finish_sequence(seq: Sequence, reason: FinishReason, stats: GenerationStats) -> None:
    """Close a sequence's stream with its reason and stats (exactly once)."""
    if seq.finished:
        return
    seq.finished = True
    logprobs, seq.logprobs = seq.logprobs or None, []
    seq.out.put(TokenEvent(finish_reason=reason, stats=stats, logprobs=logprobs))
    seq.out.put(_DONE)


def fail_sequence(seq: Sequence, error: BaseException) -> None:
    """End a sequence's stream with an error the reader will see raised."""
    if not seq.finished:
        seq.finished = True
        seq.out.put(error)


class Engine(ABC):
    """A loaded model that generates text (and possibly embeddings) for many requests."""

    name: ClassVar[str]
    supports_adapters: ClassVar[bool] = False

    def __init__(self, model: ResolvedModel) -> None:
        self.model = model
        self.context_length = 0
        self.adapters: dict[str, str] = {}

    @abstractmethod
    def load(self) -> None:
        """Load weights (or connect); set `context_length`. Called once, before requests."""

    @abstractmethod
    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        """Token ids of `text` as the model sees it (with BOS where the model wants one)."""

    @abstractmethod
    def render_chat(
        self, messages: list[ChatMessage], tools: list[dict[str, Any]] | None = None
    ) -> str:
        """The prompt text of a conversation, by the model's own chat template."""

    @abstractmethod
    def submit(
        self, prompt_ids: list[int], params: SamplingParams, *, adapter: str | None = None
    ) -> GenerationStream:
        """Start generating after `prompt_ids`; the stream yields text as it comes."""

    @abstractmethod
    def memory_bytes(self) -> int:
        """Memory the loaded model holds, for the manager's budget."""

    @property
    @abstractmethod
    def busy(self) -> int:
        """Requests waiting or generating."""

    @abstractmethod
    def close(self) -> None:
        """Cancel what is running and free the model."""

    def stop_sequences(self) -> list[str]:
        """Stop strings the model's template implies (beyond its end tokens)."""
        return []

    @property
    def failure(self) -> str | None:
        """Why this engine can no longer serve (its process crashed); None: it can."""
        return None

    @property
    def pid(self) -> int | None:
        """The process running the model's native code, where it has one of its own."""
        return None

    def tool_support(self) -> str | None:
        """Why this model cannot call tools (None: it can: its chat template shows tool
        definitions to the model)."""
        if "tools" in (self.chat_template() or ""):
            return None
        return (
            f"{self.model.name} cannot call tools: its chat template does not show tool "
            "definitions to the model. Leave out `tools`, or use a model whose template "
            "supports them (Llama 3.1+, Qwen 2.5, Mistral)."
        )

    def chat_template(self) -> str | None:
        """The model's chat template source (None: none, or applied elsewhere)."""
        return None

    def call_format(self) -> CallFormat:
        """How the model writes tool calls (read from its template)."""
        return call_format(self.chat_template() or "")

    def constraint_tokenizer(self) -> Any:
        """The model's vocabulary as llguidance reads it, for structured output."""
        raise CapabilityMissing(
            f"The {self.name} engine cannot constrain its output to a format "
            "(response_format / format); serve the model with llamacpp or transformers."
        )

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Embedding vectors; engines without an embedding path refuse."""
        raise CapabilityMissing(f"The {self.name} engine does not compute embeddings.")

    def add_adapter(self, name: str, path: str) -> None:
        raise InvalidInput(
            f"The {self.name} engine cannot apply PEFT adapters; serve the base model with "
            f"the transformers engine to use adapter {name!r}."
        )

    def generate(
        self, prompt: str, params: SamplingParams, *, adapter: str | None = None
    ) -> GenerationStream:
        """Start generating a continuation of `prompt`."""
        return self.submit(self.tokenize(prompt), params, adapter=adapter)

    def chat(
        self,
        messages: list[ChatMessage],
        params: SamplingParams,
        *,
        adapter: str | None = None,
        tools: list[dict[str, Any]] | None = None,
    ) -> GenerationStream:
        """Start generating the assistant's reply to `messages` (`tools` shown to the
        model by its chat template)."""
        if not messages:
            raise InvalidInput("messages must not be empty.")
        prompt = self.render_chat(messages, tools)
        stops = [*params.stop, *[s for s in self.stop_sequences() if s not in params.stop]]
        params = params.model_copy(update={"stop": stops})
        return self.submit(self.tokenize(prompt, special=True), params, adapter=adapter)

    def chat_prompt_tokens(self, messages: list[ChatMessage]) -> int | None:
        """Tokens the conversation's prompt takes (None: this engine cannot count them)."""
        try:
            return len(self.tokenize(self.render_chat(messages), special=True))
        except CapabilityMissing:
            return None

    def check_fits(self, prompt_tokens: int, max_tokens: int | None) -> int:
        """Tokens that may be generated; raise PromptTooLong when the prompt does not fit."""
        room = self.context_length - prompt_tokens
        if room <= 0 or (max_tokens is not None and max_tokens > room):
            asked = f" plus max_tokens {max_tokens}" if max_tokens else ""
            raise PromptTooLong(
                f"The prompt is {prompt_tokens} tokens{asked}, but {self.model.name} has a "
                f"context of {self.context_length} tokens. Shorten the prompt or lower max_tokens.",
                details={"prompt_tokens": prompt_tokens, "context_length": self.context_length},
            )
        return max_tokens or room
