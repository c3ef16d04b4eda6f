"""The engine interface, and the batching loop the CPU engines share.

An engine holds one loaded model. Requests become *sequences*; one scheduler thread per
engine admits waiting sequences (prefill), then advances every active sequence by one
token per step in a single batched forward pass, so concurrent requests share the
model's weight reads instead of queueing behind each other. Each sequence streams its
text through a `GenerationStream`; cancelling a stream frees its slot at the next step.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from aift.errors import AiftError, CapabilityMissing, InvalidInput
from aift.inference.sampling import StopMatcher, sample_token
from aift.inference.schemas import (
    ChatMessage,
    FinishReason,
    GenerationStats,
    SamplingParams,
    TokenChoice,
    TokenEvent,
    TokenLogprob,
)
from aift.inference.structured import TokenConstraint, grammar_of
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


class BatchingEngine(Engine):
    """An engine whose scheduler thread decodes all active sequences in one batch per step.

    Subclasses provide the model-specific pieces: prefill, batched decode, release,
    incremental detokenization and end-token detection.
    """

    def __init__(self, model: ResolvedModel, *, max_batch: int = 8) -> None:
        super().__init__(model)
        self.max_batch = max_batch
        self._waiting: deque[Sequence] = deque()
        self._active: list[Sequence] = []
        self._wake = threading.Condition()
        self._running = False
        self._next_id = 0
        self._thread: threading.Thread | None = None

    # -- what each engine implements -----------------------------------------------
    @abstractmethod
    def _prefill(self, seq: Sequence) -> np.ndarray:
        """Process the prompt of a new sequence; return the logits of its next token."""

    @abstractmethod
    def _decode(self, seqs: list[Sequence]) -> list[np.ndarray]:
        """Feed each sequence's last token in one batch; return each one's next logits."""

    @abstractmethod
    def _release(self, seq: Sequence) -> None:
        """Free what the sequence holds (KV cache slot, batch row)."""

    @abstractmethod
    def _piece(self, seq: Sequence, token: int) -> str:
        """Text that `token` adds to the sequence's output (may be '' mid-character)."""

    @abstractmethod
    def _is_end(self, token: int) -> bool:
        """Whether `token` ends a turn (EOS / end-of-generation tokens)."""

    # -- requests ----------------------------------------------------------------------
    def submit(
        self, prompt_ids: list[int], params: SamplingParams, *, adapter: str | None = None
    ) -> GenerationStream:
        """Queue token ids for generation; the stream yields text as it is produced."""
        if not prompt_ids:
            raise InvalidInput("The prompt is empty.")
        if adapter is not None and adapter not in self.adapters:
            raise InvalidInput(f"Adapter {adapter!r} is not loaded on {self.model.name}.")
        max_new = self.check_fits(len(prompt_ids), params.max_tokens)
        constraint = None
        if params.structured is not None:
            constraint = TokenConstraint(self.constraint_tokenizer(), grammar_of(params.structured))
        with self._wake:
            self._next_id += 1
            seq = Sequence(
                id=self._next_id,
                prompt_ids=list(prompt_ids),
                params=params,
                adapter=adapter,
                max_new_tokens=max_new,
                rng=np.random.default_rng(params.seed),
                stop=StopMatcher(params.stop),
                constraint=constraint,
            )
            self._waiting.append(seq)
            self._ensure_thread()
            self._wake.notify()
        return GenerationStream(seq)

    @property
    def busy(self) -> int:
        """Requests waiting or generating."""
        return len(self._waiting) + sum(1 for seq in list(self._active) if not seq.finished)

    # -- the scheduler ------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._running = True
            self._thread = threading.Thread(
                target=self._loop, daemon=True, name=f"engine-{self.name}-{self.model.name}"
            )
            self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._wake:
                while self._running and not self._waiting and not self._active:
                    self._wake.wait()
                if not self._running:
                    break
                admitted: list[Sequence] = []
                while self._waiting and len(self._active) + len(admitted) < self.max_batch:
                    admitted.append(self._waiting.popleft())
            try:
                self._step(admitted)
            except Exception as exc:  # noqa: BLE001 - fail the requests, keep the engine
                log.exception("engine %s failed a step", self.name)
                self._fail_all(EngineError(f"Generation failed: {type(exc).__name__}: {exc}"))

    def _prefill_many(self, seqs: list[Sequence]) -> list[np.ndarray]:
        """Prefill several new sequences; engines that can pack prompts together override."""
        return [self._prefill(seq) for seq in seqs]

    def _step(self, admitted: list[Sequence]) -> None:
        starting = []
        for seq in admitted:
            if seq.cancelled.is_set():
                self._finish(seq, FinishReason.cancelled)
            else:
                seq.started_at = time.perf_counter()
                starting.append(seq)
        if starting:
            for seq, logits in zip(starting, self._prefill_many(starting), strict=True):
                self._active.append(seq)
                self._accept(seq, self._choose(seq, logits))
        running = [s for s in self._active if not s.finished and not s.cancelled.is_set()]
        for seq in self._active:
            if seq.cancelled.is_set() and not seq.finished:
                self._finish(seq, FinishReason.cancelled)
        if running:
            for seq, logits in zip(running, self._decode(running), strict=True):
                self._accept(seq, self._choose(seq, logits))
        for seq in [s for s in self._active if s.finished]:
            self._active.remove(seq)
            self._release(seq)

    def _choose(self, seq: Sequence, logits: np.ndarray) -> int:
        """The next token: sampled from the logits the output format allows (its
        log-probability under the model kept when asked for)."""
        allowed = seq.constraint.mask(logits) if seq.constraint is not None else logits
        token = sample_token(allowed, seq.params, seq.rng, seq.generated)
        if seq.params.logprobs is not None:
            seq.logprobs.append(self._logprob(logits, token, seq.params.logprobs))
        return token

    def _logprob(self, logits: np.ndarray, token: int, top: int) -> TokenLogprob:
        scores = logits.astype(np.float64)
        shifted = scores - scores.max()
        logprobs = shifted - np.log(np.exp(shifted).sum())
        best: list[int] = []
        if top:
            candidates = np.argpartition(-logprobs, top)[:top]
            best = [int(t) for t in candidates[np.argsort(-logprobs[candidates])]]
        return TokenLogprob(
            **self._token_choice(token, float(logprobs[token])).model_dump(),
            top=[self._token_choice(t, float(logprobs[t])) for t in best],
        )

    def _token_choice(self, token: int, logprob: float) -> TokenChoice:
        raw = self._token_bytes(token)
        return TokenChoice(
            token=raw.decode("utf-8", errors="replace"), logprob=logprob, bytes=list(raw)
        )

    def _token_bytes(self, token: int) -> bytes:
        """The bytes one token stands for (for log-probability reports)."""
        raise CapabilityMissing(f"The {self.name} engine cannot report log-probabilities.")

    def _accept(self, seq: Sequence, token: int) -> None:
        if not seq.generated:
            seq.first_token_at = time.perf_counter()
        seq.generated.append(token)
        if self._is_end(token):
            self._emit(seq, seq.stop.flush())
            self._finish(seq, FinishReason.stop)
            return
        text, hit_stop = seq.stop.feed(self._piece(seq, token))
        self._emit(seq, text)
        if seq.constraint is not None:
            seq.constraint.consume(token)
            hit_stop = hit_stop or seq.constraint.complete
            if seq.constraint.complete:
                self._emit(seq, seq.stop.flush())
        if hit_stop:
            self._finish(seq, FinishReason.stop)
        elif len(seq.generated) >= seq.max_new_tokens:
            self._emit(seq, seq.stop.flush())
            self._finish(seq, FinishReason.length)

    @staticmethod
    def _emit(seq: Sequence, text: str) -> None:
        if text:
            logprobs, seq.logprobs = seq.logprobs or None, []
            seq.out.put(TokenEvent(text=text, logprobs=logprobs))

    def _finish(self, seq: Sequence, reason: FinishReason) -> None:
        if seq.finished:
            return
        now = time.perf_counter()
        started = seq.started_at or now
        first = seq.first_token_at or now
        stats = GenerationStats(
            prompt_tokens=len(seq.prompt_ids),
            completion_tokens=len(seq.generated),
            queue_ms=(started - seq.submitted_at) * 1000,
            prompt_ms=(first - started) * 1000,
            decode_ms=(now - first) * 1000,
            total_ms=(now - seq.submitted_at) * 1000,
        )
        finish_sequence(seq, reason, stats)

    def _fail_all(self, error: Exception) -> None:
        with self._wake:
            victims = list(self._active) + list(self._waiting)
            self._waiting.clear()
        for seq in victims:
            fail_sequence(seq, error)
            try:
                self._release(seq)
            except Exception:  # noqa: BLE001 - best effort while failing
                pass
        self._active.clear()

    def close(self) -> None:
        """Stop the scheduler (pending requests are cancelled) and free the model."""
        with self._wake:
            self._running = False
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for seq in list(self._active) + list(self._waiting):
            self._finish(seq, FinishReason.cancelled)
        self._active.clear()
        self._waiting.clear()
