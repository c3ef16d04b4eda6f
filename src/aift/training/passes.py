"""One packed row trained in several forward passes, cut between its examples.

A packed row holds up to `max_length` tokens of several examples. On a CPU each pass
takes one row, and a pass holds the activations of all its tokens until its backward:
about 1 GB for a 1,024-token row of SmolLM2-135M, most of a run's memory. Examples in a
packed row never attend to each other (`packed_attention`) and the loss is summed per
token and divided by the step's label count, so the row can be cut between examples into
passes of at most `pass_tokens` tokens, each backpropagated on its own: the same
gradients and the same loss, with the activations of one pass at a time. Memory then
follows the tokens of a pass, not the packing length. An example longer than a pass is a
pass of its own.
"""

from __future__ import annotations

from typing import Any

# Tokens per pass on a CPU: half a 1,024-token row. Measured on SmolLM2-135M (bf16, one
# packed row of short chats): 2.1 GB peak for whole rows against 1.7 GB, at the same speed
# (docs/benchmarks.md, "a small chat dataset").
CPU_PASS_TOKENS = 512


def example_starts(position_ids: Any) -> list[int]:
    """Offsets in a one-row batch where an example starts (its positions restart at 0)."""
    starts = (position_ids[0] == 0).nonzero().flatten().tolist()
    return starts if starts and starts[0] == 0 else [0, *starts]


def cut_points(starts: list[int], length: int, pass_tokens: int) -> list[int]:
    """Where to cut a row of `length` tokens whose examples begin at `starts`: greedy
    passes of whole examples up to `pass_tokens` each; the offsets include 0 and `length`."""
    bounds = [*starts, length]
    cuts = [0]
    for begin, end in zip(bounds, bounds[1:], strict=False):  # each example in turn
        if end - cuts[-1] > pass_tokens and begin > cuts[-1]:
            cuts.append(begin)  # the pass so far would overflow: this example starts anew
    if cuts[-1] != length:
        cuts.append(length)
    return cuts


def split_row(inputs: dict[str, Any], pass_tokens: int) -> list[dict[str, Any]]:
    """A one-row packed batch as the passes to run; the batch itself when it fits one."""
    length = int(inputs["input_ids"].shape[1])
    if "position_ids" not in inputs or inputs["input_ids"].shape[0] != 1 or length <= pass_tokens:
        return [inputs]
    cuts = cut_points(example_starts(inputs["position_ids"]), length, pass_tokens)
    return [
        {key: value[:, begin:end] for key, value in inputs.items()}
        for begin, end in zip(cuts, cuts[1:], strict=False)
    ]
