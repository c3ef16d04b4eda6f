"""GGUF models through llama.cpp (llama-cpp-python), the default for GGUF on CPU.

One llama.cpp context holds a KV cache slot per concurrent sequence (`n_seq_max`); each
scheduler step decodes the last token of every active sequence in one `llama_decode`
call, the way llama.cpp's own server runs parallel slots. Sampling happens in Python on
the returned logits, so every request keeps its own temperature, top-p, top-k and seed.

LoRA adapters of the GGUF's model are converted once to GGUF adapters and applied per
request: llama.cpp applies adapters to a whole context, not to single sequences, so a
step decodes the sequences of each adapter (and those without one) as separate groups.
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aift import threads
from aift.errors import InvalidInput
from aift.inference.engines import EngineSource, register_engine
from aift.inference.engines.base import Engine, Sequence
from aift.inference.engines.batching import BatchingEngine
from aift.inference.engines.prefix_slots import PrefixSlots
from aift.inference.schemas import ChatMessage
from aift.models.schemas import ModelFormat
from aift.threads import compute_threads

if TYPE_CHECKING:
    from aift.models.schemas import ResolvedModel

log = logging.getLogger(__name__)

DEFAULT_CONTEXT_PER_SEQUENCE = 2048


class LlamaCppEngine(BatchingEngine):
    """Serves one GGUF file with batched decoding across concurrent requests."""

    name = "llamacpp"

    def __init__(
        self,
        model: ResolvedModel,
        *,
        max_batch: int = 8,
        context_length: int | None = None,
        cache_dir: Path | None = None,
        prefix_cache: bool = True,
        speculative_tokens: int = 0,
        speculative_max_batch: int = 1,
    ) -> None:
        super().__init__(model, max_batch=max_batch)
        self.prefix_cache = prefix_cache
        self.speculative_tokens = speculative_tokens
        self.speculative_max_batch = speculative_max_batch
        self.cache_dir = cache_dir
        self._loras: dict[str, Any] = {}  # adapter name → llama_adapter_lora pointer
        self._active_lora: str | None = None
        self._decode_lock = threading.Lock()
        self.requested_context = context_length or DEFAULT_CONTEXT_PER_SEQUENCE
        # llama.cpp's own objects, set by load().
        self._llama_model: Any = None
        self._ctx: Any = None
        self._batch: Any = None
        self._slots = PrefixSlots(max_batch, reuse=prefix_cache)
        self._formatter: Any = None
        self._chat_stops: list[str] = []
        self._constraint_tokenizer: Any = None
        self._constraint_lock = threading.Lock()

    @property
    def gguf_path(self) -> Path:
        if not self.model.file:
            raise InvalidInput(
                f"{self.model.name} is not a GGUF file; the llamacpp engine needs one."
            )
        return Path(self.model.path) / self.model.file

    def load(self) -> None:
        from aift.native.llamacpp_backend import ensure_backend

        ensure_backend(self.cache_dir, self.gguf_path)  # the CPU code this machine runs
        import llama_cpp
        from llama_cpp import _internals as internals

        model_params = llama_cpp.llama_model_default_params()
        self._llama_model = internals.LlamaModel(
            path_model=str(self.gguf_path), params=model_params, verbose=False
        )
        per_sequence = min(self.requested_context, self._llama_model.n_ctx_train())
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = per_sequence * self.max_batch
        params.n_batch = 512
        params.n_ubatch = 512
        params.n_seq_max = self.max_batch
        # One KV stream per slot: attention reads only its own stream, so the KV that idle
        # slots keep for prefix reuse costs other requests nothing (in a unified cache
        # every decode attends over all used cells: 4 idle 1.7k-token chats made decoding
        # ~20 % slower).
        params.kv_unified = False
        count = compute_threads()
        params.n_threads = count
        params.n_threads_batch = count
        params.no_perf = True
        self._ctx = internals.LlamaContext(model=self._llama_model, params=params, verbose=False)
        self._batch = internals.LlamaBatch(
            n_tokens=max(512, self.max_batch), embd=0, n_seq_max=1, verbose=False
        )
        self.context_length = per_sequence
        self._slots = PrefixSlots(self.max_batch, reuse=self.prefix_cache)
        self._setup_chat_template()
        log.info(
            "llama.cpp loaded %s: %d slots × %d tokens",
            self.model.name,
            self.max_batch,
            per_sequence,
        )

    def _setup_chat_template(self) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        metadata = self._llama_model.metadata()
        template = metadata.get("tokenizer.chat_template")
        if not template:
            return
        vocab = self._llama_model
        eos = vocab.token_get_text(vocab.token_eos()) if vocab.token_eos() >= 0 else ""
        bos = vocab.token_get_text(vocab.token_bos()) if vocab.token_bos() >= 0 else ""
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self._chat_stops = [eos] if eos else []

    # -- adapters ----------------------------------------------------------------------
    def add_adapter(self, name: str, path: str) -> None:
        """Convert a PEFT LoRA adapter of this model to a GGUF adapter (once, cached) and
        load it; requests pick it by `name`."""
        import llama_cpp

        if name in self._loras:
            return
        gguf_adapter = self._converted_adapter(Path(path))
        with self._decode_lock:
            pointer = llama_cpp.llama_adapter_lora_init(
                self._llama_model.model, str(gguf_adapter).encode()
            )
        if not pointer:
            raise InvalidInput(f"llama.cpp could not load adapter {name!r} on {self.model.name}.")
        self._loras[name] = pointer
        self.adapters[name] = path

    def _converted_adapter(self, adapter_dir: Path) -> Path:
        from filelock import FileLock

        from aift.weights.gguf_adapter import adapter_to_gguf

        weights = adapter_dir / "adapter_model.safetensors"
        if not weights.exists():
            raise InvalidInput(f"{adapter_dir} has no adapter_model.safetensors.")
        stamp = f"{weights.stat().st_mtime_ns}-{weights.stat().st_size}"
        root = (self.cache_dir or Path(tempfile.gettempdir()) / "aift") / "gguf-adapters"
        root.mkdir(parents=True, exist_ok=True)
        target = root / f"{adapter_dir.name}-{stamp}.gguf"
        with FileLock(str(target) + ".lock"):
            if not target.exists():
                partial = target.with_suffix(".partial")
                adapter_to_gguf(adapter_dir, partial, self._base_config())
                partial.replace(target)
        return target

    def _base_config(self) -> dict[str, Any]:
        """The shapes of this GGUF's model in transformers' terms (for adapter conversion)."""
        meta = self._llama_model.metadata()
        arch = meta.get("general.architecture", "")
        from aift.weights.gguf_names import TRANSFORMERS_OF_GGUF as names

        if arch not in names:
            raise InvalidInput(
                f"llama.cpp adapters are converted for llama and qwen2 models; "
                f"{self.model.name} is {arch or 'unknown'}. Serve it with the transformers engine."
            )
        heads = int(meta[f"{arch}.attention.head_count"])
        return {
            "architectures": [names[arch]],
            "num_hidden_layers": int(meta[f"{arch}.block_count"]),
            "num_attention_heads": heads,
            "num_key_value_heads": int(meta.get(f"{arch}.attention.head_count_kv", heads)),
        }

    def _use_adapter(self, name: str | None) -> None:
        """Make `name` (None: no adapter) the context's adapter for the next decode."""
        import llama_cpp

        if name == self._active_lora:
            return
        if name is None:
            llama_cpp.llama_set_adapters_lora(self._ctx.ctx, None, 0, None)
        else:
            adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self._loras[name])
            scales = (ctypes.c_float * 1)(1.0)
            llama_cpp.llama_set_adapters_lora(self._ctx.ctx, adapters, 1, scales)
        self._active_lora = name

    # -- text ------------------------------------------------------------------------
    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        model = self._llama_model
        add_bos = model.add_bos_token()
        bos_text = model.token_get_text(model.token_bos()) if model.token_bos() >= 0 else None
        if bos_text and text.startswith(bos_text):
            add_bos = False  # the chat template already put it there
        return list(model.tokenize(text.encode("utf-8"), add_bos, special))

    def render_chat(
        self, messages: list[ChatMessage], tools: list[dict[str, Any]] | None = None
    ) -> str:
        if self._formatter is None:
            raise InvalidInput(
                f"{self.model.name} has no chat template; use the completions endpoint."
            )
        response = self._formatter(
            messages=[m.template_view() for m in messages], tools=tools or None
        )
        return response.prompt

    def chat_template(self) -> str | None:
        return self._llama_model.metadata().get("tokenizer.chat_template")

    def stop_sequences(self) -> list[str]:
        return list(self._chat_stops)

    def constraint_tokenizer(self) -> Any:
        """llguidance's view of the GGUF vocabulary (built once, ~1 s), ending on any
        end-of-generation token."""
        with self._constraint_lock:
            if self._constraint_tokenizer is None:
                import llama_cpp
                from llguidance.llamacpp import lltokenizer_from_vocab

                vocab = self._llama_model.vocab
                ends = [
                    token
                    for token in range(self._llama_model.n_vocab())
                    if llama_cpp.llama_vocab_is_eog(vocab, token)
                ]
                self._constraint_tokenizer = lltokenizer_from_vocab(vocab, eos_token=ends or None)
            return self._constraint_tokenizer

    def _piece(self, seq: Sequence, token: int) -> str:
        if seq.detok is None:
            seq.detok = codecs.getincrementaldecoder("utf-8")(errors="replace")
        return seq.detok.decode(self._token_bytes(token))

    def _token_bytes(self, token: int) -> bytes:
        import llama_cpp

        buffer = ctypes.create_string_buffer(64)
        size = llama_cpp.llama_token_to_piece(self._llama_model.vocab, token, buffer, 64, 0, False)
        if size < 0:  # longer piece than the buffer: ask again with the size it needs
            buffer = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(
                self._llama_model.vocab, token, buffer, -size, 0, False
            )
        return buffer.raw[:size]

    def _is_end(self, token: int) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self._llama_model.vocab, token))

    # -- batched decoding --------------------------------------------------------------
    def _run(self, entries: list[tuple[int, int, int, bool]], adapter: str | None = None) -> None:
        """Decode (token, position, slot, wants_logits) entries in one llama_decode call,
        with `adapter` applied."""
        self._use_adapter(adapter)
        batch = self._batch.batch
        batch.n_tokens = len(entries)
        for i, (token, pos, slot, wants_logits) in enumerate(entries):
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = slot
            batch.logits[i] = wants_logits
        with self._decode_lock:
            self._ctx.decode(self._batch)

    def _logits(self, index: int) -> np.ndarray:
        import llama_cpp

        pointer = llama_cpp.llama_get_logits_ith(self._ctx.ctx, index)
        n_vocab = self._llama_model.n_vocab()
        return np.ctypeslib.as_array(
            ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), shape=(n_vocab,)
        ).copy()

    def _prefill(self, seq: Sequence) -> np.ndarray:
        return self._prefill_many([seq])[0]

    def _prefill_many(self, seqs: list[Sequence]) -> list[np.ndarray]:
        """Prefill new sequences, one adapter group after another."""
        logits: list[np.ndarray | None] = [None] * len(seqs)
        for adapter, indexes in _groups(seqs).items():
            group = self._prefill_group([seqs[i] for i in indexes], adapter)
            for index, values in zip(indexes, group, strict=True):
                logits[index] = values
        return logits  # type: ignore[return-value]

    def _prefill_group(self, seqs: list[Sequence], adapter: str | None) -> list[np.ndarray]:
        """Pack the prompts of new sequences into as few llama_decode calls as fit a batch."""
        capacity = self._batch._n_tokens
        pending: list[tuple[int, int, int, bool]] = []  # token, position, slot, wants logits
        owners: list[int] = []  # for entries wanting logits: index of their sequence
        logits: list[np.ndarray | None] = [None] * len(seqs)

        def flush() -> None:
            if not pending:
                return
            self._run(pending, adapter)
            rows = [i for i, entry in enumerate(pending) if entry[3]]
            for row, owner in zip(rows, owners, strict=True):
                logits[owner] = self._logits(row)
            pending.clear()
            owners.clear()

        for index, seq in enumerate(seqs):
            if self._slots.waits_for_pending(seq.prompt_ids, adapter):
                flush()  # compute the earlier prompts, so this one copies their prefix
                for earlier in seqs[:index]:
                    self._slots.ready(earlier.slot)
            start = self._place(seq, adapter)
            last = len(seq.prompt_ids) - 1
            for position in range(start, len(seq.prompt_ids)):
                if len(pending) == capacity:
                    flush()
                pending.append((seq.prompt_ids[position], position, seq.slot, position == last))
                if position == last:
                    owners.append(index)
        flush()
        for seq in seqs:
            self._slots.ready(seq.slot)
        return logits  # type: ignore[return-value]

    def _place(self, seq: Sequence, adapter: str | None) -> int:
        """Give the sequence a slot holding the longest prefix of its prompt that any
        slot has computed (trimmed in place, or copied from another slot); returns the
        first position left to compute."""
        import llama_cpp

        placement = self._slots.place(seq.prompt_ids, adapter)
        memory, slot = self._ctx.memory, placement.slot
        start = placement.shared
        with self._decode_lock:
            if placement.evict or placement.source is not None:
                llama_cpp.llama_memory_seq_rm(memory, slot, -1, -1)
            if placement.source is not None:  # streams copy whole (partial copies abort)
                llama_cpp.llama_memory_seq_cp(memory, placement.source, slot, -1, -1)
                llama_cpp.llama_memory_seq_rm(memory, slot, start, -1)
            elif not llama_cpp.llama_memory_seq_rm(memory, slot, start, -1):
                llama_cpp.llama_memory_seq_rm(memory, slot, -1, -1)  # cannot trim: recompute
                start = 0
        seq.slot = slot
        seq.cached_tokens = start
        return start

    def _decode(self, seqs: list[Sequence]) -> list[np.ndarray]:
        return [rows[0] for rows in self._decode_rows(seqs)]

    def _decode_rows(self, seqs: list[Sequence]) -> list[list[np.ndarray]]:
        """Feed each sequence's last token and its draft (if any) in one llama_decode per
        adapter group; the logits after each fed token."""
        rows: list[list[np.ndarray]] = [[] for _ in seqs]
        for adapter, indexes in _groups(seqs).items():
            entries: list[tuple[int, int, int, bool]] = []
            owners: list[int] = []
            for index in indexes:
                seq = seqs[index]
                position = len(seq.prompt_ids) + len(seq.generated) - 1
                if seq.drafted_tokens:  # drop the KV of an earlier step's rejected draft
                    self._trim(seq.slot, position)
                for offset, token in enumerate([seq.last_token, *seq.draft]):
                    entries.append((token, position + offset, seq.slot, True))
                    owners.append(index)
            self._run(entries, adapter)
            for row, owner in enumerate(owners):
                rows[owner].append(self._logits(row))
        return rows

    def _trim(self, slot: int, position: int) -> None:
        """Forget the slot's KV from `position` on."""
        import llama_cpp

        with self._decode_lock:
            llama_cpp.llama_memory_seq_rm(self._ctx.memory, slot, position, -1)

    def _release(self, seq: Sequence) -> None:
        """The slot keeps the sequence's KV (prompt and every token fed back) for a later
        request that starts the same way."""
        if seq.slot is None:
            return
        kept = seq.prompt_ids + seq.generated[:-1]
        if seq.drafted_tokens:  # the KV may run on into a rejected draft
            self._trim(seq.slot, len(kept))
        self._slots.release(seq.slot, kept)
        seq.slot = None

    def _fail_all(self, error: Exception) -> None:
        """After a failed step no slot's KV is trusted: all are erased."""
        import llama_cpp

        super()._fail_all(error)
        with self._decode_lock:
            llama_cpp.llama_memory_clear(self._ctx.memory, True)
        self._slots.reset()

    def memory_bytes(self) -> int:
        size = self.gguf_path.stat().st_size
        if self._ctx is not None:
            size += self._ctx.get_state_size()
        return size

    def close(self) -> None:
        import llama_cpp

        super().close()
        if self._ctx is not None and self._loras:
            llama_cpp.llama_set_adapters_lora(self._ctx.ctx, None, 0, None)
        for pointer in self._loras.values():
            llama_cpp.llama_adapter_lora_free(pointer)
        self._loras.clear()
        for item in (self._batch, self._ctx, self._llama_model):
            if item is not None:
                item.close()
        self._batch = self._ctx = self._llama_model = None


def _groups(seqs: list[Sequence]) -> dict[str | None, list[int]]:
    """Indexes of the sequences of each adapter (None: the bare model), in order."""
    groups: dict[str | None, list[int]] = {}
    for index, seq in enumerate(seqs):
        groups.setdefault(seq.adapter, []).append(index)
    return groups


@register_engine("llamacpp", formats=(ModelFormat.gguf,), preference=30, serves_adapters=True)
def _build(source: EngineSource) -> Engine:
    """A GGUF file, as it is (quantised weights stay quantised; LoRA adapters of it are
    converted to GGUF adapters), in a child process of its own unless
    AIFT_ISOLATE_ENGINES is off."""
    settings = source.settings
    if not settings.isolate_engines:
        return LlamaCppEngine(
            source.resolved,
            max_batch=settings.max_batch,
            context_length=settings.context_length,
            cache_dir=settings.effective_cache_dir,
            prefix_cache=settings.prefix_cache,
            speculative_tokens=settings.speculative_tokens,
            speculative_max_batch=settings.speculative_max_batch,
        )
    from aift.inference.engines.process import ProcessEngine

    options = {
        "max_batch": settings.max_batch,
        "context_length": settings.context_length,
        "cache_dir": str(settings.effective_cache_dir),
        "prefix_cache": settings.prefix_cache,
        "speculative_tokens": settings.speculative_tokens,
        "speculative_max_batch": settings.speculative_max_batch,
    }
    return ProcessEngine(
        source.resolved,
        kind="llamacpp",
        options=options,
        threads=threads.plan(settings, "serve").threads,
    )
