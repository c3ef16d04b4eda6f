"""A transformers folder (optionally plus a LoRA adapter) written as one GGUF file.

Weights are streamed: every tensor's name, shape and type is planned from the
safetensors headers, the GGUF header is written, then each tensor is read, converted
and written on its own, so memory holds one tensor (one layer's experts for a mixture
of experts) at a time, never the model. LoRA deltas are folded into the weights they
change as those weights pass by. Tokenizer and chat template come from the folder's
tokenizer files (`tokenizer_metadata`).
"""

from __future__ import annotations

import json
import math
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from aift.errors import InvalidInput
from aift.export.schemas import FloatType
from aift.weights.gguf_names import gguf_architecture, rope_permute

Progress = Callable[[float, str], None]

_EXPERT = re.compile(r"^model\.layers\.(\d+)\.block_sparse_moe\.experts\.(\d+)\.(w[123])\.weight$")
_EXPERT_TENSOR = {"w1": "ffn_gate_exps", "w2": "ffn_down_exps", "w3": "ffn_up_exps"}


def read_config(model_dir: Path) -> dict[str, Any]:
    """The model's config.json (a clear error when it is missing or broken)."""
    path = model_dir / "config.json"
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{model_dir} has no readable config.json: {exc}") from None


class SafetensorsSource:
    """The tensors of a folder's safetensors files, read one at a time (plus LoRA deltas)."""

    def __init__(
        self, model_dir: Path, deltas: dict[str, tuple[Any, Any]] | None = None, scale: float = 1.0
    ) -> None:
        self.files = sorted(model_dir.glob("*.safetensors"))
        if not self.files:
            raise InvalidInput(f"{model_dir} holds no safetensors weights to export.")
        self.shapes: dict[str, list[int]] = {}
        self.where: dict[str, Path] = {}
        for file in self.files:
            for name, entry in _header(file).items():
                self.shapes[name] = list(entry["shape"])
                self.where[name] = file
        self.deltas = deltas or {}
        self.scale = scale
        missing = sorted(set(self.deltas) - set(self.shapes))
        if missing:
            raise InvalidInput(
                f"The adapter changes {len(missing)} weights the base model does not have "
                f"(e.g. {missing[0]}): is it an adapter of this base?"
            )

    def load(self, name: str) -> np.ndarray:
        """One tensor as float32 (with its LoRA delta added when the adapter has one)."""
        from safetensors import safe_open

        with safe_open(str(self.where[name]), framework="pt") as handle:
            tensor = handle.get_tensor(name).float()
        if name in self.deltas:
            a, b = self.deltas[name]
            tensor = tensor + self.scale * (b.float() @ a.float())
        return tensor.numpy()


def _header(file: Path) -> dict[str, Any]:
    with open(file, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    header.pop("__metadata__", None)
    return dict(header)


@dataclass
class PlannedTensor:
    """One GGUF tensor: its name, shape (PyTorch order), whether it stays float32, and
    how to produce its values."""

    name: str
    shape: list[int]
    keep_f32: bool
    load: Callable[[], np.ndarray]


def plan_tensors(
    config: dict[str, Any], source: SafetensorsSource, arch: str
) -> list[PlannedTensor]:
    """Every tensor of the GGUF file, in writing order, mapped to llama.cpp's names."""
    import gguf

    layers = int(config["num_hidden_layers"])
    model_arch = gguf.MODEL_ARCH.LLAMA if arch == "llama" else gguf.MODEL_ARCH.QWEN2
    names = gguf.get_tensor_name_map(model_arch, layers)
    heads = int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads") or heads)
    tied = bool(config.get("tie_word_embeddings", False))
    planned: list[PlannedTensor] = []
    experts: dict[tuple[int, str], dict[int, str]] = {}
    for key in source.shapes:
        match = _EXPERT.match(key)
        if match:
            layer, expert, part = int(match[1]), int(match[2]), match[3]
            experts.setdefault((layer, part), {})[expert] = key
            continue
        if key == "lm_head.weight" and tied:
            continue
        if key.endswith("rotary_emb.inv_freq"):
            continue
        name = names.get_name(key, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise InvalidInput(f"GGUF export does not know where {key} goes in llama.cpp's layout.")
        permute = None
        if arch == "llama" and key.endswith("self_attn.q_proj.weight"):
            permute = heads
        elif arch == "llama" and key.endswith("self_attn.k_proj.weight"):
            permute = kv_heads
        planned.append(
            PlannedTensor(
                name=name,
                shape=source.shapes[key],
                keep_f32=len(source.shapes[key]) == 1 or name.endswith("ffn_gate_inp.weight"),
                load=_loader(source, key, permute),
            )
        )
    for (layer, part), members in sorted(experts.items()):
        keys = [members[i] for i in sorted(members)]
        planned.append(
            PlannedTensor(
                name=f"blk.{layer}.{_EXPERT_TENSOR[part]}.weight",
                shape=[len(keys), *source.shapes[keys[0]]],
                keep_f32=False,
                load=_stacked(source, keys),
            )
        )
    rope = _rope_factors(config)
    if rope is not None:
        planned.append(PlannedTensor("rope_freqs.weight", [len(rope)], True, lambda: rope))
    return planned


def _stacked(source: SafetensorsSource, keys: list[str]) -> Callable[[], np.ndarray]:
    """One layer's experts as one tensor [experts, rows, columns] (llama.cpp's layout)."""
    return lambda: np.stack([source.load(key) for key in keys])


def _loader(source: SafetensorsSource, key: str, permute: int | None) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        values = source.load(key)
        return rope_permute(values, permute) if permute else values

    return load


def rope_settings(config: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """The rotary base and scaling of a config (transformers 4 and 5 spell them apart)."""
    params = dict(config.get("rope_parameters") or config.get("rope_scaling") or {})
    theta = float(params.get("rope_theta") or config.get("rope_theta") or 10000.0)
    return theta, params


def _rope_factors(config: dict[str, Any]) -> np.ndarray | None:
    """Llama 3.1-style frequency factors (llama.cpp reads them as the rope_freqs tensor)."""
    theta, params = rope_settings(config)
    kind = params.get("rope_type") or params.get("type") or "default"
    if kind in ("default", "linear"):
        return None
    if kind != "llama3":
        raise InvalidInput(f"GGUF export does not handle rope scaling {kind!r} yet.")
    head_dim = int(config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"])
    factor = float(params["factor"])
    low, high = float(params["low_freq_factor"]), float(params["high_freq_factor"])
    old_context = float(params["original_max_position_embeddings"])
    factors = []
    for i in range(0, head_dim, 2):
        wavelength = 2 * math.pi * theta ** (i / head_dim)
        if wavelength < old_context / high:
            factors.append(1.0)
        elif wavelength > old_context / low:
            factors.append(factor)
        else:
            smooth = (old_context / wavelength - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(factors, dtype=np.float32)


def _stored(values: np.ndarray, keep_f32: bool, outtype: FloatType) -> tuple[np.ndarray, Any]:
    """The bytes to write for one tensor and their GGML type."""
    import gguf

    values = np.ascontiguousarray(values, dtype=np.float32)
    if keep_f32 or outtype == FloatType.f32:
        return values, gguf.GGMLQuantizationType.F32
    if outtype == FloatType.f16:
        return values.astype(np.float16), gguf.GGMLQuantizationType.F16
    return gguf.quants.quantize(
        values, gguf.GGMLQuantizationType.BF16
    ), gguf.GGMLQuantizationType.BF16


def _info_of(tensor: PlannedTensor, outtype: FloatType) -> tuple[list[int], np.dtype, int, Any]:
    """Shape, numpy dtype, byte count and raw type of a planned tensor, before loading it."""
    import gguf

    count = math.prod(tensor.shape)
    if tensor.keep_f32 or outtype == FloatType.f32:
        return tensor.shape, np.dtype(np.float32), count * 4, None
    if outtype == FloatType.f16:
        return tensor.shape, np.dtype(np.float16), count * 2, None
    byte_shape = [*tensor.shape[:-1], tensor.shape[-1] * 2]
    return byte_shape, np.dtype(np.uint8), count * 2, gguf.GGMLQuantizationType.BF16


def write_gguf(
    model_dir: Path,
    out_file: Path,
    *,
    outtype: FloatType,
    tokenizer_dir: Path,
    name: str,
    adapter: tuple[dict[str, tuple[Any, Any]], float] | None = None,
    progress: Progress | None = None,
) -> int:
    """Write the model in `model_dir` (plus `adapter` deltas) to `out_file`; return the
    number of tensors written."""
    import gguf

    from aift.export.tokenizer_metadata import add_tokenizer

    config = read_config(model_dir)
    arch = gguf_architecture(config)
    deltas, scale = adapter or ({}, 1.0)
    source = SafetensorsSource(model_dir, deltas, scale)
    planned = plan_tensors(config, source, arch)
    writer = gguf.GGUFWriter(str(out_file), arch)
    _add_hyperparameters(writer, config, name, outtype)
    add_tokenizer(writer, tokenizer_dir, int(config["vocab_size"]))
    for tensor in planned:
        shape, dtype, nbytes, raw = _info_of(tensor, outtype)
        writer.add_tensor_info(tensor.name, shape, dtype, nbytes, raw_dtype=raw)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for index, tensor in enumerate(planned):
        data, _ = _stored(tensor.load(), tensor.keep_f32, outtype)
        writer.write_tensor_data(data)
        if progress is not None and index % 8 == 0:
            progress(index / len(planned), f"writing {tensor.name}")
    writer.close()
    return len(planned)


_FILE_TYPE = {FloatType.f32: 0, FloatType.f16: 1, FloatType.bf16: 32}


def _add_hyperparameters(
    writer: Any, config: dict[str, Any], name: str, outtype: FloatType
) -> None:
    import gguf

    heads = int(config["num_attention_heads"])
    hidden = int(config["hidden_size"])
    head_dim = int(config.get("head_dim") or hidden // heads)
    theta, params = rope_settings(config)
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_context_length(int(config.get("max_position_embeddings") or 2048))
    writer.add_embedding_length(hidden)
    writer.add_block_count(int(config["num_hidden_layers"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(heads)
    writer.add_head_count_kv(int(config.get("num_key_value_heads") or heads))
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(theta)
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps", 1e-6)))
    writer.add_vocab_size(int(config["vocab_size"]))
    writer.add_file_type(_FILE_TYPE[outtype])
    if head_dim * heads != hidden:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    kind = params.get("rope_type") or params.get("type")
    if kind == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(params["factor"]))
    if config.get("num_local_experts"):
        writer.add_expert_count(int(config["num_local_experts"]))
        writer.add_expert_used_count(int(config["num_experts_per_tok"]))
