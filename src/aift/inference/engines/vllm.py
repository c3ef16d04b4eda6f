"""GPU serving through vLLM (PagedAttention, continuous batching, multi-LoRA).

vLLM is imported only when it is installed and a GPU is present; otherwise loading says
which extra to install. The mapping of aift's requests onto vLLM's parameters is plain
code, tested without a GPU.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aift.errors import CapabilityMissing, InvalidInput
from aift.inference.engines import EngineSource, register_engine
from aift.inference.engines.base import (
    Engine,
    GenerationStream,
    Sequence,
    fail_sequence,
    finish_sequence,
    new_sequence,
)
from aift.inference.schemas import ChatMessage, FinishReason, GenerationStats, SamplingParams
from aift.models.schemas import ModelFormat

if TYPE_CHECKING:
    from aift.models.schemas import ResolvedModel

log = logging.getLogger(__name__)

MAX_LORAS = 4
MAX_LORA_RANK = 64


def vllm_available() -> bool:
    """vLLM is installed and an NVIDIA GPU is visible."""
    if importlib.util.find_spec("vllm") is None:
        return False
    from aift.monitoring.system import detect_devices

    return any(device.kind == "cuda" for device in detect_devices())


def require_vllm() -> None:
    """Raise a clear error naming what is missing for the vLLM engine."""
    if importlib.util.find_spec("vllm") is None:
        raise CapabilityMissing(
            "The vllm engine needs the `gpu` extra: pip install 'aift[gpu]' (on a machine with "
            "an NVIDIA GPU). Use the transformers or llamacpp engine on CPU."
        )
    if not vllm_available():
        raise CapabilityMissing(
            "The vllm engine needs an NVIDIA GPU and none is visible here. Use the transformers "
            "or llamacpp engine on CPU."
        )


def sampling_kwargs(params: SamplingParams, max_tokens: int) -> dict[str, Any]:
    """aift's sampling parameters as keyword arguments of vllm.SamplingParams."""
    return {
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k if params.top_k > 0 else -1,  # vLLM: -1 disables top-k
        "max_tokens": max_tokens,
        "stop": list(params.stop) or None,
        "seed": params.seed,
        "repetition_penalty": params.repetition_penalty,
        "frequency_penalty": params.frequency_penalty,
        "presence_penalty": params.presence_penalty,
    }


def structured_kwargs(params: SamplingParams) -> dict[str, Any] | None:
    """A structured-output request as keyword arguments of vLLM's StructuredOutputsParams
    (vLLM enforces it with its own xgrammar/guidance backends)."""
    wanted = params.structured
    if wanted is None:
        return None
    if wanted.type == "json_object":
        return {"json_object": True}
    if wanted.type == "json_schema":
        return {"json": wanted.json_schema}
    if wanted.type == "regex":
        return {"regex": wanted.pattern}
    return {"grammar": wanted.pattern}


def engine_kwargs(
    model_dir: Path, *, dtype: str, context_length: int, max_batch: int
) -> dict[str, Any]:
    """Keyword arguments of vllm.AsyncEngineArgs for one served model with LoRA enabled."""
    return {
        "model": str(model_dir),
        "dtype": dtype,
        "max_model_len": context_length,
        "max_num_seqs": max_batch,
        "enable_lora": True,
        "max_loras": MAX_LORAS,
        "max_lora_rank": MAX_LORA_RANK,
        "gpu_memory_utilization": 0.9,
    }


def lora_kwargs(name: str, lora_id: int, path: str) -> dict[str, Any]:
    """Keyword arguments of vllm.lora.request.LoRARequest for an adapter."""
    return {"lora_name": name, "lora_int_id": lora_id, "lora_path": path}


def finish_reason(vllm_reason: str | None) -> FinishReason:
    return FinishReason.length if vllm_reason == "length" else FinishReason.stop


class VllmEngine(Engine):
    """A transformers folder served by vLLM's async engine on the GPU."""

    name = "vllm"
    supports_adapters = True

    def __init__(
        self,
        model: ResolvedModel,
        *,
        model_dir: Path,
        max_batch: int = 64,
        context_length: int | None = None,
        dtype: str = "auto",
    ) -> None:
        super().__init__(model)
        self.model_dir = model_dir
        self.max_batch = max_batch
        self.requested_context = context_length or 4096
        self.dtype = dtype
        # vLLM's async engine and the model's tokenizer, set by load().
        self._engine: Any = None
        self._tokenizer: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lora_ids = itertools.count(1)
        self._lora: dict[str, int] = {}
        self._sequences: dict[str, Sequence] = {}

    def load(self) -> None:
        require_vllm()
        from transformers import AutoTokenizer
        from vllm import AsyncEngineArgs, AsyncLLMEngine

        self._tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        args = AsyncEngineArgs(
            **engine_kwargs(
                self.model_dir,
                dtype=self.dtype,
                context_length=self.requested_context,
                max_batch=self.max_batch,
            )
        )
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, daemon=True, name="vllm-loop").start()
        self._engine = AsyncLLMEngine.from_engine_args(args)
        self.context_length = self.requested_context

    def add_adapter(self, name: str, path: str) -> None:
        if name not in self._lora:
            if len(self._lora) >= MAX_LORAS:
                raise InvalidInput(f"At most {MAX_LORAS} adapters per vLLM model.")
            self._lora[name] = next(self._lora_ids)
            self.adapters[name] = path

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        return list(self._tokenizer(text, add_special_tokens=special)["input_ids"])

    def render_chat(
        self, messages: list[ChatMessage], tools: list[dict[str, Any]] | None = None
    ) -> str:
        return self._tokenizer.apply_chat_template(
            [m.template_view() for m in messages],
            tools=tools or None,
            add_generation_prompt=True,
            tokenize=False,
        )

    def submit(
        self, prompt_ids: list[int], params: SamplingParams, *, adapter: str | None = None
    ) -> GenerationStream:
        if params.logprobs is not None:
            raise CapabilityMissing(
                "Log-probabilities are not reported by aift's vLLM engine yet; leave out "
                "logprobs or serve the model with transformers or llamacpp."
            )
        max_new = self.check_fits(len(prompt_ids), params.max_tokens)
        seq = new_sequence(prompt_ids, params, adapter, max_new)
        request_id = f"aift-{time.monotonic_ns()}"
        self._sequences[request_id] = seq
        assert self._loop is not None, "submit before load"
        asyncio.run_coroutine_threadsafe(self._run(request_id, seq), self._loop)
        return GenerationStream(seq)

    async def _run(self, request_id: str, seq: Sequence) -> None:
        from vllm import SamplingParams as VllmSamplingParams
        from vllm.lora.request import LoRARequest

        lora = None
        if seq.adapter:
            lora = LoRARequest(
                **lora_kwargs(seq.adapter, self._lora[seq.adapter], self.adapters[seq.adapter])
            )
        extra: dict[str, Any] = {}
        structured = structured_kwargs(seq.params)
        if structured is not None:
            from vllm.sampling_params import StructuredOutputsParams

            extra["structured_outputs"] = StructuredOutputsParams(**structured)
        sampling = VllmSamplingParams(**sampling_kwargs(seq.params, seq.max_new_tokens), **extra)
        shown = 0
        started = time.perf_counter()
        try:
            async for output in self._engine.generate(
                {"prompt_token_ids": seq.prompt_ids}, sampling, request_id, lora_request=lora
            ):
                if seq.cancelled.is_set():
                    await self._engine.abort(request_id)
                    finish_sequence(seq, FinishReason.cancelled, GenerationStats())
                    return
                completion = output.outputs[0]
                if len(completion.text) > shown:
                    from aift.inference.schemas import TokenEvent

                    seq.out.put(TokenEvent(text=completion.text[shown:]))
                    shown = len(completion.text)
                if output.finished:
                    elapsed = (time.perf_counter() - started) * 1000
                    finish_sequence(
                        seq,
                        finish_reason(completion.finish_reason),
                        GenerationStats(
                            prompt_tokens=len(seq.prompt_ids),
                            completion_tokens=len(completion.token_ids),
                            decode_ms=elapsed,
                            total_ms=elapsed,
                        ),
                    )
        except Exception as exc:  # noqa: BLE001 - the reader sees the error
            fail_sequence(seq, InvalidInput(f"vLLM failed: {exc}"))
        finally:
            self._sequences.pop(request_id, None)

    @property
    def busy(self) -> int:
        return sum(1 for seq in self._sequences.values() if not seq.finished)

    def memory_bytes(self) -> int:
        return 0  # lives in GPU memory, which vLLM reserves up front

    def close(self) -> None:
        for seq in list(self._sequences.values()):
            seq.cancelled.set()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._engine = None


@register_engine(
    "vllm",
    formats=(ModelFormat.hf, ModelFormat.gguf),
    requirement=require_vllm,
    preference=20,
    serves_adapters=True,
)
def _build(source: EngineSource) -> VllmEngine:
    """A transformers folder on an NVIDIA GPU (a GGUF file is converted first)."""
    return VllmEngine(
        source.resolved,
        model_dir=source.transformers_dir(),
        max_batch=source.settings.max_batch,
        context_length=source.settings.context_length,
    )
