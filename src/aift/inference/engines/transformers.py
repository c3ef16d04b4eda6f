"""Models through Hugging Face transformers (CPU or GPU), with PEFT adapters per request.

Concurrent requests are decoded together: one batched KV cache holds every active
sequence, left-padded to a common length. A new request is prefilled on its own and then
joins the batch at the next step; a finished one leaves it (its row is dropped). Adapters
loaded next to the base are chosen per row (PEFT's mixed-adapter batches), so a request
for an adapter and one for the base share the same forward pass.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aift.errors import CapabilityMissing, InvalidInput
from aift.inference.engines import EngineSource, register_engine
from aift.inference.engines.base import Sequence
from aift.inference.engines.batching import BatchingEngine
from aift.inference.schemas import ChatMessage
from aift.models.policy import plan_loading
from aift.models.schemas import ModelFormat

if TYPE_CHECKING:
    import torch

    from aift.models.schemas import ResolvedModel

log = logging.getLogger(__name__)

BASE_ADAPTER = "__base__"


class TransformersEngine(BatchingEngine):
    """Serves a transformers model folder with batched decoding and per-request adapters."""

    name = "transformers"
    supports_adapters = True

    def __init__(
        self,
        model: ResolvedModel,
        *,
        model_dir: Path,
        max_batch: int = 8,
        context_length: int | None = None,
        dtype: str | None = None,
    ) -> None:
        super().__init__(model, max_batch=max_batch)
        self.model_dir = model_dir
        self.requested_context = context_length
        self.requested_dtype = dtype
        self.dtype = "float32"
        self.device = "cpu"
        # Third-party objects, set by load(): the model (a PeftModel once an adapter is
        # added), its tokenizer, and the batch's KV cache and masks (torch tensors).
        self._model: Any = None
        self._tokenizer: Any = None
        self._eos: set[int] = set()
        self._rows: list[int] = []  # sequence ids in batch order
        self._cache: Any = None
        self._mask: Any = None  # [batch, cached length] 1 = real token, 0 = left padding
        self._lengths: Any = None  # real tokens per row
        self._constraint_tokenizer: Any = None
        self._constraint_lock = threading.Lock()

    # -- loading ------------------------------------------------------------------------
    def load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from aift.models.inspect import safetensors_summary
        from aift.monitoring.system import detect_devices

        if self.model.format not in (ModelFormat.hf, ModelFormat.gguf):
            raise InvalidInput(f"{self.model.name} is not a causal language model folder.")
        params, _ = safetensors_summary(sorted(self.model_dir.glob("*.safetensors")))
        plan = plan_loading(max(params, 1), list(detect_devices()), prefer=self.requested_dtype)
        if not plan.fits:
            raise InvalidInput(plan.reason)
        self.dtype, self.device = plan.dtype, plan.device
        self._tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        kwargs = {"dtype": getattr(torch, plan.dtype)}
        if plan.device == "cuda":
            kwargs["device_map"] = plan.device_map
            if plan.max_memory:
                kwargs["max_memory"] = plan.max_memory
        if plan.quantization:
            kwargs["quantization_config"] = bitsandbytes_config(plan.quantization, plan.dtype)
        model = AutoModelForCausalLM.from_pretrained(self.model_dir, **kwargs)
        model.eval()
        self._model = model
        config_ctx = getattr(model.config, "max_position_embeddings", None) or 2048
        self.context_length = min(self.requested_context or config_ctx, config_ctx)
        eos = model.generation_config.eos_token_id
        eos = eos if isinstance(eos, list) else [eos]
        self._eos = {e for e in eos if e is not None}
        if self._tokenizer.eos_token_id is not None:
            self._eos.add(self._tokenizer.eos_token_id)
        log.info(
            "transformers loaded %s (%s on %s): %s",
            self.model.name,
            self.dtype,
            self.device,
            plan.reason,
        )

    def constraint_tokenizer(self) -> Any:
        """llguidance's view of the tokenizer (built once, ~1 s); fast tokenizers only."""
        with self._constraint_lock:
            if self._constraint_tokenizer is None:
                from llguidance.hf import from_tokenizer
                from transformers import PreTrainedTokenizerFast

                if not isinstance(self._tokenizer, PreTrainedTokenizerFast):
                    raise CapabilityMissing(
                        f"{self.model.name} has a slow (Python) tokenizer; structured output "
                        "needs a fast one (tokenizer.json)."
                    )
                size = max(len(self._tokenizer), int(self._model.config.vocab_size))
                self._constraint_tokenizer = from_tokenizer(
                    self._tokenizer, n_vocab=size, eos_token=sorted(self._eos)
                )
            return self._constraint_tokenizer

    def add_adapter(self, name: str, path: str) -> None:
        """Load a PEFT adapter next to the base; requests pick it by `name`."""
        from peft import PeftModel

        if name in self.adapters:
            return
        with self._wake:  # not while a step runs
            if not self.adapters:
                self._model = PeftModel.from_pretrained(self._model, path, adapter_name=name)
            else:
                self._model.load_adapter(path, adapter_name=name)
            self._model.eval()
            self.adapters[name] = path

    # -- text ---------------------------------------------------------------------------
    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        bos = self._tokenizer.bos_token
        if bos and text.startswith(bos):
            special = False  # the chat template already put it there
        return list(self._tokenizer(text, add_special_tokens=special)["input_ids"])

    def chat_template(self) -> str | None:
        template = self._tokenizer.chat_template
        return template if isinstance(template, str) else None

    def render_chat(
        self, messages: list[ChatMessage], tools: list[dict[str, Any]] | None = None
    ) -> str:
        if not self._tokenizer.chat_template:
            raise InvalidInput(
                f"{self.model.name} has no chat template; use the completions endpoint."
            )
        return self._tokenizer.apply_chat_template(
            [m.template_view() for m in messages],
            tools=tools or None,
            add_generation_prompt=True,
            tokenize=False,
        )

    def _piece(self, seq: Sequence, token: int) -> str:
        shown = seq.detok or ""
        text = self._tokenizer.decode(seq.generated, skip_special_tokens=True)
        if text.endswith("\ufffd"):
            return ""  # wait for the rest of a multi-byte character
        seq.detok = text
        return text[len(shown) :] if text.startswith(shown) else ""

    def _token_bytes(self, token: int) -> bytes:
        return str(self._tokenizer.decode([token])).encode("utf-8")

    def _is_end(self, token: int) -> bool:
        return token in self._eos

    # -- batched decoding ------------------------------------------------------------------
    def _forward(self, input_ids: torch.Tensor, **kwargs: Any) -> Any:
        """One forward pass with the KV cache (the model's output object)."""
        import torch

        if self.adapters and "adapter_names" not in kwargs:
            kwargs["adapter_names"] = None
        if kwargs.get("adapter_names") is None:
            kwargs.pop("adapter_names", None)
        with torch.inference_mode():
            return self._model(input_ids=input_ids, use_cache=True, **kwargs)

    def _adapter_names(self, seqs: list[Sequence]) -> list[str] | None:
        if not self.adapters:
            return None
        return [seq.adapter or BASE_ADAPTER for seq in seqs]

    def _prefill(self, seq: Sequence) -> np.ndarray:
        import torch

        ids = torch.tensor([seq.prompt_ids], device=self._device())
        out = self._forward(ids, adapter_names=self._adapter_names([seq]))
        seq.slot = [(layer.keys, layer.values) for layer in out.past_key_values.layers]
        return out.logits[0, -1].float().cpu().numpy()

    def _device(self) -> torch.device:
        return next(self._model.parameters()).device

    def _rebuild(self, seqs: list[Sequence]) -> None:
        """Make the batched cache hold exactly `seqs`, in order (drop, then add rows)."""
        import torch
        from transformers import DynamicCache

        device = self._device()
        parts: list[tuple[list, torch.Tensor, int]] = []  # (layers, mask row, length)
        old_index = {seq_id: i for i, seq_id in enumerate(self._rows)}
        for seq in seqs:
            if seq.id in old_index and self._cache is not None:
                i = old_index[seq.id]
                layers = [
                    (layer.keys[i : i + 1], layer.values[i : i + 1]) for layer in self._cache.layers
                ]
                parts.append((layers, self._mask[i], int(self._lengths[i])))
            else:
                length = len(seq.prompt_ids)
                mask = torch.ones(length, dtype=torch.long, device=device)
                parts.append((seq.slot, mask, length))
                seq.slot = "batched"
        width = max(int(mask.sum()) for _, mask, _ in parts)
        layers_out, masks = [], []
        for layers, mask, _ in parts:
            keep = mask.shape[0] - width  # columns of pure padding to drop on the left
            if keep > 0:
                layers = [(k[:, :, keep:], v[:, :, keep:]) for k, v in layers]
                mask = mask[keep:]
            pad = width - mask.shape[0]
            if pad > 0:
                layers = [(_left_pad(k, pad), _left_pad(v, pad)) for k, v in layers]
                mask = torch.cat([torch.zeros(pad, dtype=mask.dtype, device=device), mask])
            layers_out.append(layers)
            masks.append(mask)
        n_layers = len(layers_out[0])
        merged = [
            (
                torch.cat([rows[j][0] for rows in layers_out]),
                torch.cat([rows[j][1] for rows in layers_out]),
            )
            for j in range(n_layers)
        ]
        self._cache = DynamicCache(ddp_cache_data=merged)
        self._mask = torch.stack(masks)
        self._lengths = torch.tensor([length for _, _, length in parts], device=device)
        self._rows = [seq.id for seq in seqs]

    def _decode(self, seqs: list[Sequence]) -> list[np.ndarray]:
        import torch

        if [seq.id for seq in seqs] != self._rows:
            self._rebuild(seqs)
        device = self._device()
        input_ids = torch.tensor([[seq.last_token] for seq in seqs], device=device)
        mask = torch.cat(
            [self._mask, torch.ones(len(seqs), 1, dtype=self._mask.dtype, device=device)], dim=1
        )
        out = self._forward(
            input_ids,
            attention_mask=mask,
            position_ids=self._lengths.unsqueeze(1),
            past_key_values=self._cache,
            adapter_names=self._adapter_names(seqs),
        )
        self._cache, self._mask = out.past_key_values, mask
        self._lengths = self._lengths + 1
        logits = out.logits[:, -1].float().cpu().numpy()
        return [logits[i] for i in range(len(seqs))]

    def _release(self, seq: Sequence) -> None:
        if seq.slot != "batched":
            seq.slot = None  # a prefill cache that never joined the batch
        if not self._active or all(s.finished for s in self._active):
            self._cache = self._mask = self._lengths = None
            self._rows = []

    def memory_bytes(self) -> int:
        if self._model is None:
            return 0
        return sum(p.numel() * p.element_size() for p in self._model.parameters())

    def close(self) -> None:
        super().close()
        self._model = self._tokenizer = self._cache = None


def _left_pad(tensor: torch.Tensor, pad: int) -> torch.Tensor:
    import torch

    shape = list(tensor.shape)
    shape[2] = pad
    return torch.cat([torch.zeros(shape, dtype=tensor.dtype, device=tensor.device), tensor], dim=2)


def bitsandbytes_config(quantization: str, compute_dtype: str) -> Any:
    """transformers' BitsAndBytesConfig for the loading policy's 8-bit or 4-bit choice
    (4-bit: NF4 with double quantization, computing in `compute_dtype`)."""
    import importlib.util

    import torch
    from transformers import BitsAndBytesConfig

    if importlib.util.find_spec("bitsandbytes") is None:
        raise CapabilityMissing(
            f"{quantization} loading needs bitsandbytes on a CUDA GPU: pip install 'aift[gpu]'."
        )
    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=getattr(torch, compute_dtype),
    )


@register_engine(
    "transformers", formats=(ModelFormat.hf, ModelFormat.gguf), preference=10, serves_adapters=True
)
def _build(source: EngineSource) -> TransformersEngine:
    """Any transformers folder (a GGUF file is converted to one first)."""
    return TransformersEngine(
        source.resolved,
        model_dir=source.transformers_dir(),
        max_batch=source.settings.max_batch,
        context_length=source.settings.context_length,
    )
