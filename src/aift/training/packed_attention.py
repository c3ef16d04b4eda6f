"""Causal attention that runs per packed example instead of over the whole row.

A packed row holds several examples whose position ids restart at 0. transformers'
`sdpa` path turns that into a dense block-diagonal mask and computes every score of the
row (L² work, most of it masked away). Here each example gets its own causal
`scaled_dot_product_attention` call, so the work is the sum of the examples' squares and
no mask is built. The result is the same as running the examples one by one.

Registered under transformers' AttentionInterface; used for training rows only, on
architectures whose attention is plain causal softmax attention.
"""

from __future__ import annotations

from typing import Any

NAME = "aift_packed"

# Architectures whose attention is plain causal softmax attention with the position ids
# reaching the attention function (no sliding window, no logit soft-capping, no sinks).
_PLAIN_ATTENTION = {"llama", "mistral", "qwen2", "qwen3", "granite", "olmo2", "phi3"}


def supports_packed_attention(config: Any, max_length: int) -> bool:
    """True when per-example attention gives exactly what the model's own attention would."""
    if getattr(config, "model_type", None) not in _PLAIN_ATTENTION:
        return False
    window = getattr(config, "sliding_window", None)
    if window and getattr(config, "use_sliding_window", True) and window < max_length:
        return False
    return True


def example_bounds(position_ids: Any) -> list[int]:
    """Start offsets of the examples in one row (where positions restart), plus the end."""
    starts = (position_ids == 0).nonzero().flatten().tolist()
    if not starts or starts[0] != 0:
        starts = [0, *starts]
    return [*starts, int(position_ids.shape[-1])]


def packed_causal_attention(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    scaling: float | None = None,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[Any, None]:
    """Attention over (batch, heads, length, dim) tensors, one causal block per example."""
    import torch
    from torch.nn.functional import scaled_dot_product_attention

    position_ids = kwargs.get("position_ids")
    if position_ids is None:
        raise RuntimeError("packed attention needs the position ids of the packed row")
    grouped = query.shape[1] != key.shape[1]
    rows = []
    for row in range(query.shape[0]):
        bounds = example_bounds(position_ids[min(row, position_ids.shape[0] - 1)])
        parts = [
            scaled_dot_product_attention(
                query[row : row + 1, :, start:end],
                key[row : row + 1, :, start:end],
                value[row : row + 1, :, start:end],
                dropout_p=dropout,
                is_causal=True,
                scale=scaling,
                enable_gqa=grouped,
            )
            for start, end in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        rows.append(torch.cat(parts, dim=2))
    return torch.cat(rows, dim=0).transpose(1, 2).contiguous(), None


def use_packed_attention(model: Any) -> None:
    """Switch a loaded model to per-example attention (registering it once)."""
    from transformers import AttentionInterface

    if NAME not in AttentionInterface._global_mapping:
        AttentionInterface.register(NAME, packed_causal_attention)
    model.set_attn_implementation(NAME)
