"""The batching loop the CPU engines share.

One scheduler thread per engine admits waiting sequences (prefill), then advances every
active sequence by one token per step in a single batched forward pass, so concurrent
requests share the model's weight reads instead of queueing behind each other.
Cancelling a stream frees its slot at the next step.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import abstractmethod
from collections import deque

import numpy as np

from aift.errors import CapabilityMissing, InvalidInput
from aift.inference.engines.base import (
    Engine,
    EngineError,
    GenerationStream,
    Sequence,
    fail_sequence,
    finish_sequence,
)
from aift.inference.prompt_lookup import draft
from aift.inference.sampling import StopMatcher, sample_token
from aift.inference.schemas import (
    FinishReason,
    GenerationStats,
    SamplingParams,
    TokenChoice,
    TokenEvent,
    TokenLogprob,
)
from aift.inference.structured import TokenConstraint, grammar_of
from aift.models.schemas import ResolvedModel

log = logging.getLogger(__name__)


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
        # prompt-lookup drafts: tokens per step (0: off) and the largest batch that drafts
        self.speculative_tokens = 0
        self.speculative_max_batch = 1

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
            self._plan_drafts(running)
            for seq, rows in zip(running, self._decode_rows(running), strict=True):
                self._accept_rows(seq, rows)
        for seq in [s for s in self._active if s.finished]:
            self._active.remove(seq)
            self._release(seq)

    # -- speculative decoding (prompt lookup) ----------------------------------------
    def _decode_rows(self, seqs: list[Sequence]) -> list[list[np.ndarray]]:
        """Each sequence's logits after its last token and then after each token of its
        draft; engines that verify drafts override this (the others never get one)."""
        return [[logits] for logits in self._decode(seqs)]

    def _plan_drafts(self, seqs: list[Sequence]) -> None:
        """Give each sequence a prompt-lookup draft when speculation is on and the batch
        is small enough for the extra positions to come nearly free."""
        if not self.speculative_tokens or len(seqs) > self.speculative_max_batch:
            return
        for seq in seqs:
            room = seq.max_new_tokens - len(seq.generated) - 1
            size = min(seq.draft_size, self.speculative_tokens, room)
            seq.draft = draft(seq.prompt_ids + seq.generated, size)

    def _accept_rows(self, seq: Sequence, rows: list[np.ndarray]) -> None:
        """Choose a token from each row of logits in turn, as plain decoding would, and
        stop at the first that differs from the draft: every token kept is the one the
        model (with this request's sampling) chooses after the tokens before it."""
        fed, seq.draft = seq.draft, []
        kept = 0
        for index, logits in enumerate(rows):
            token = self._choose(seq, logits)
            self._accept(seq, token)
            if seq.finished or index == len(fed) or token != fed[index]:
                break
            kept += 1
        seq.drafted_tokens += len(fed)
        seq.accepted_tokens += kept
        if fed:  # a right draft doubles the next one's length; a wrong one shrinks it
            seq.draft_size = seq.draft_size * 2 if kept == len(fed) else kept + 1

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
            cached_tokens=seq.cached_tokens,
            drafted_tokens=seq.drafted_tokens,
            accepted_tokens=seq.accepted_tokens,
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
