"""Mixture-of-experts composition: several fine-tunes of one base as one Mixtral model.

As mergekit-moe does: every expert's MLP (gate/up/down projections) becomes one expert of
each layer's sparse MoE block; attention, norms and embeddings come from the base; the
router of each layer is initialised from hidden states of prompts the user gives per
expert ("hidden" gate mode) or at random. The result is written in the Mixtral checkpoint
layout (`block_sparse_moe.experts.N.w1/w2/w3`) that transformers, llama.cpp's converter
and vLLM read, tensor by tensor: memory holds the base's hidden-state pass and one
layer's tensors at a time, never the whole model twice.

Router rows in hidden mode: for layer l, the mean MLP input h̄ₑ of expert e's prompts
(what the router sees), centred on the mean over experts and scaled to unit length, so
each row points at what sets that expert's prompts apart from the others'.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from aift.errors import InvalidInput
from aift.models.registry import ModelRegistry
from aift.training.schemas import GateMode, MoeJobConfig
from aift.weights.lora import COPIED, lora_deltas
from aift.work.actor import current_actor
from aift.work.control import Work

# Dense architectures whose decoder layer is Mixtral's minus the MoE block.
COMPOSABLE = {"llama", "mistral"}
SHARD_BYTES = 2 * 1024**3
MLP = {"gate_proj": "w1", "down_proj": "w2", "up_proj": "w3"}


def check_base(config: dict[str, Any]) -> None:
    """Refuse bases whose layers Mixtral cannot represent (with the reason)."""
    kind = config.get("model_type")
    if kind not in COMPOSABLE:
        raise InvalidInput(
            f"Mixture-of-experts composition builds a Mixtral model, which takes Llama- or "
            f"Mistral-style bases; this base is {kind or 'unknown'}."
        )
    for flag in ("attention_bias", "mlp_bias"):
        if config.get(flag):
            raise InvalidInput(f"The base uses {flag}, which Mixtral layers do not have.")


def mixtral_config(base_dir: Path, experts: int, top_k: int) -> Any:
    """The Mixtral config of the composed model: the base's shapes, `experts` experts."""
    from transformers import AutoConfig, MixtralConfig

    base = AutoConfig.from_pretrained(base_dir)
    fields = {
        name: getattr(base, name)
        for name in (
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_hidden_layers",
            "num_attention_heads",
            "num_key_value_heads",
            "hidden_act",
            "max_position_embeddings",
            "initializer_range",
            "rms_norm_eps",
            "pad_token_id",
            "bos_token_id",
            "eos_token_id",
            "tie_word_embeddings",
            "attention_dropout",
            "rope_parameters",
        )
        if hasattr(base, name)
    }
    fields["head_dim"] = getattr(base, "head_dim", None) or (
        base.hidden_size // base.num_attention_heads
    )
    fields["sliding_window"] = getattr(base, "sliding_window", None)
    config = MixtralConfig(**fields, num_local_experts=experts, num_experts_per_tok=top_k)
    config.architectures = ["MixtralForCausalLM"]
    config.dtype = getattr(base, "dtype", None) or "float32"
    return config


class Tensors:
    """Named tensors of a transformers folder's safetensors shards, read one at a time."""

    def __init__(self, folder: Path, stack: ExitStack) -> None:
        from safetensors import safe_open

        self.where: dict[str, Any] = {}
        shards = sorted(folder.glob("*.safetensors"))
        if not shards:
            raise InvalidInput(f"{folder} has no safetensors weights.")
        for shard in shards:
            handle = stack.enter_context(safe_open(str(shard), framework="pt"))
            for key in handle.keys():
                self.where[key] = handle

    def __contains__(self, key: str) -> bool:
        return key in self.where

    def get(self, key: str) -> Any:
        return self.where[key].get_tensor(key)

    def shape(self, key: str) -> tuple[int, ...]:
        """A tensor's shape from the file's header, without reading the tensor."""
        return tuple(self.where[key].get_slice(key).get_shape())


class ExpertWeights:
    """One expert's MLP weights: a full fine-tune's own, or the base's plus a LoRA delta."""

    def __init__(self, base: Tensors, folder: Path, stack: ExitStack) -> None:
        self.base = base
        self.own: Tensors | None = None
        self.deltas: dict[str, tuple[Any, Any]] = {}
        self.scale = 1.0
        if (folder / "adapter_config.json").is_file():
            self.deltas, self.scale = lora_deltas(folder)
        else:
            self.own = Tensors(folder, stack)

    def get(self, key: str) -> Any:
        if self.own is not None:
            if key not in self.own:
                raise InvalidInput(f"An expert has no weight {key}: is it a fine-tune of the base?")
            tensor = self.own.get(key)
        else:
            tensor = self.base.get(key)
            if key in self.deltas:
                a, b = self.deltas[key]
                tensor = (tensor.float() + self.scale * (b.float() @ a.float())).to(tensor.dtype)
        expected = self.base.shape(key)
        if tuple(tensor.shape) != expected:
            raise InvalidInput(
                f"An expert's {key} is {tuple(tensor.shape)}, the base's {tuple(expected)}: "
                "experts must be fine-tunes of the same base."
            )
        return tensor


def prompt_tokens(tokenizer: Any, prompt: str) -> tuple[list[int], list[bool]]:
    """A prompt as the served model sees it (a user turn in the chat template when there is
    one), and which of its tokens are the prompt's own text rather than the template's."""
    text = prompt
    if tokenizer.chat_template:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
    start = text.rfind(prompt.strip())
    end = start + len(prompt.strip())
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    own = [start < 0 or (a < end and b > start) for a, b in encoded["offset_mapping"]]
    return list(encoded["input_ids"]), own


def mlp_inputs(model: Any, tokenizer: Any, prompts: list[str]) -> Any:
    """Mean input of each layer's MLP over the prompts' own tokens: (layers × hidden)."""
    import torch

    layers = model.model.layers
    sums = [torch.zeros(model.config.hidden_size) for _ in layers]
    count = 0
    mask: Any = None

    def hook(index: int) -> Callable[..., None]:
        def capture(module: Any, args: tuple[Any, ...]) -> None:
            hidden = args[0].detach().float().reshape(-1, args[0].shape[-1])
            sums[index] += hidden[mask].sum(0).cpu()

        return capture

    handles = [layer.mlp.register_forward_pre_hook(hook(i)) for i, layer in enumerate(layers)]
    try:
        with torch.no_grad():
            for prompt in prompts:
                ids, own = prompt_tokens(tokenizer, prompt)
                mask = torch.tensor(own)
                count += int(mask.sum())
                model(input_ids=torch.tensor([ids]), use_cache=False)
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack(sums) / max(count, 1)


def hidden_gates(base_dir: Path, prompt_sets: list[list[str]]) -> Any:
    """Router weights (layers × experts × hidden) from the base's MLP inputs per expert."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model.eval()
    means = torch.stack([mlp_inputs(model, tokenizer, prompts) for prompts in prompt_sets], dim=1)
    centred = means - means.mean(dim=1, keepdim=True)
    return centred / centred.norm(dim=-1, keepdim=True).clamp(min=1e-6)


def random_gates(layers: int, experts: int, hidden: int, seed: int) -> Any:
    import torch

    generator = torch.Generator().manual_seed(seed)
    gates = torch.randn(layers, experts, hidden, generator=generator)
    return gates / gates.norm(dim=-1, keepdim=True)


def composed_tensors(
    base: Tensors, experts: list[ExpertWeights], gates: Any, layers: int
) -> Iterator[tuple[str, Any]]:
    """The Mixtral checkpoint's tensors, in order, one at a time."""
    for key in base.where:
        if ".layers." not in key:
            yield key, base.get(key)  # embeddings, final norm, lm_head
    for layer in range(layers):
        prefix = f"model.layers.{layer}."
        for key in base.where:
            if key.startswith(prefix) and ".mlp." not in key:
                yield key, base.get(key)
        gate_written = False
        for index, expert in enumerate(experts):
            for dense, moe in MLP.items():
                tensor = expert.get(f"{prefix}mlp.{dense}.weight")
                if not gate_written:  # the router in the experts' dtype
                    gate = gates[layer].to(tensor.dtype).contiguous()
                    yield f"{prefix}block_sparse_moe.gate.weight", gate
                    gate_written = True
                yield f"{prefix}block_sparse_moe.experts.{index}.{moe}.weight", tensor.contiguous()


def write_shards(
    tensors: Iterator[tuple[str, Any]], out_dir: Path, limit: int = SHARD_BYTES
) -> int:
    """Save tensors as safetensors shards of at most `limit` bytes with an index; total bytes."""
    from safetensors.torch import save_file

    shards: list[dict[str, Any]] = [{}]
    sizes = [0]
    names: list[str] = []
    weight_map: dict[str, int] = {}

    def flush() -> None:
        name = f"part-{len(names) + 1}.safetensors"
        save_file(shards[-1], str(out_dir / name), metadata={"format": "pt"})
        names.append(name)
        shards[-1] = {}
        sizes.append(0)

    total = 0
    for key, tensor in tensors:
        size = tensor.numel() * tensor.element_size()
        if shards[-1] and sizes[-1] + size > limit:
            flush()
        shards[-1][key] = tensor
        sizes[-1] += size
        weight_map[key] = len(names)
        total += size
    if shards[-1]:
        flush()
    count = len(names)
    final = [f"model-{i + 1:05d}-of-{count:05d}.safetensors" for i in range(count)]
    for old, new in zip(names, final, strict=True):
        (out_dir / old).replace(out_dir / new)
    index = {
        "metadata": {"total_size": total},
        "weight_map": {key: final[shard] for key, shard in weight_map.items()},
    }
    (out_dir / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return total


def routing_shares(model: Any, tokenizer: Any, prompt_sets: list[list[str]]) -> list[list[float]]:
    """Mean router probability of each expert over the prompts' own tokens and every layer,
    per prompt set (row e: where expert e's prompts go)."""
    import torch

    experts = model.config.num_local_experts
    seen: list[Any] = []
    mask: Any = None

    def capture(module: Any, args: Any, output: Any) -> None:
        probs = torch.softmax(output[0].float(), dim=-1).reshape(-1, experts)
        seen.append(probs[mask].cpu())

    handles = [layer.mlp.gate.register_forward_hook(capture) for layer in model.model.layers]
    shares = []
    try:
        for prompts in prompt_sets:
            seen.clear()
            with torch.no_grad():
                for prompt in prompts:
                    ids, own = prompt_tokens(tokenizer, prompt)
                    mask = torch.tensor(own)
                    model(input_ids=torch.tensor([ids]), use_cache=False)
            shares.append(torch.cat(seen).mean(0).tolist())
    finally:
        for handle in handles:
            handle.remove()
    return shares


def _model_card(config: MoeJobConfig, shares: list[list[float]]) -> str:
    lines = [
        f"# moe_{config.name}",
        "",
        f"A Mixtral-style mixture of {len(config.experts)} experts composed by aift from "
        f"fine-tunes of `{config.base.name}` (top-{config.top_k} routing, "
        f"{config.gate_mode.value} router initialisation).",
        "",
        "| expert | source | share of router weight on its own prompts |",
        "|---|---|---|",
    ]
    for index, expert in enumerate(config.experts):
        lines.append(f"| {index} | `{expert.model}` | {shares[index][index]:.0%} |")
    return "\n".join(lines) + "\n"


def compose_moe(ctx: Work, config: MoeJobConfig, models: ModelRegistry) -> dict[str, Any]:
    """Compose experts into one Mixtral model, check its routing, and register it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from aift.models.schemas import ModelKind, ModelSource

    base_dir = models.resolver.transformers_dir(config.base)
    out_dir = Path(config.output_dir)
    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        mixtral = mixtral_config(base_dir, len(config.experts), config.top_k)
        prompts = [e.prompts for e in config.experts]
        if config.gate_mode == GateMode.hidden:
            ctx.progress(0.05, "reading the experts' prompts through the base…", force=True)
            gates = hidden_gates(base_dir, prompts)
        else:
            gates = random_gates(
                mixtral.num_hidden_layers, len(config.experts), mixtral.hidden_size, config.seed
            )
        ctx.check_cancelled()
        ctx.progress(0.3, "writing the experts' layers…", force=True)
        with ExitStack() as stack:
            base = Tensors(base_dir, stack)
            experts = [ExpertWeights(base, Path(d), stack) for d in config.expert_dirs]
            size = write_shards(
                composed_tensors(base, experts, gates, mixtral.num_hidden_layers), staging
            )
        mixtral.save_pretrained(staging)
        for name in COPIED:
            if name != "config.json" and (base_dir / name).exists():
                shutil.copy(base_dir / name, staging / name)
        ctx.check_cancelled()
        ctx.progress(0.8, "loading the composed model to check its routing…", force=True)
        model = AutoModelForCausalLM.from_pretrained(staging)
        model.eval()
        shares = routing_shares(model, AutoTokenizer.from_pretrained(staging), prompts)
        del model
        (staging / "README.md").write_text(_model_card(config, shares))
        (staging / "moe_config.json").write_text(config.model_dump_json(indent=2))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    staging.replace(out_dir)
    routing = {e.model: shares[i] for i, e in enumerate(config.experts)}
    info = models.register(
        out_dir.name,
        out_dir,
        source=ModelSource.workspace,
        owner=current_actor.get().user_id,
        kind=ModelKind.finetuned,
        extra={
            "moe": {
                "base": config.base.name,
                "experts": [e.model for e in config.experts],
                "top_k": config.top_k,
                "gate_mode": config.gate_mode.value,
                "routing": routing,
            }
        },
    )
    return {
        "model": info.name,
        "output_dir": str(out_dir),
        "experts": len(config.experts),
        "size_bytes": size,
        "routing": routing,
    }
