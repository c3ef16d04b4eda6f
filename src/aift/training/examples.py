"""Turning canonical examples into token ids and labels, and packing them into rows.

Labels are the token ids where the loss counts and -100 elsewhere: with `loss_on=assistant`
only the assistant turns (their text and end-of-turn token) count, so the model learns
to answer, not to repeat prompts. Packing puts several examples into one row of at most
`max_length` tokens with position ids restarting per example; attention then runs per
example (`packed_attention`), or through transformers' block-diagonal mask for other
architectures, so packed examples never attend to each other.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aift.models.tokenizers import DEFAULT_CHAT_TEMPLATE

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

IGNORE = -100


@dataclass
class Tokenized:
    input_ids: list[int]
    labels: list[int]
    truncated: bool


def _template(tokenizer: PreTrainedTokenizerBase) -> str:
    return tokenizer.chat_template or DEFAULT_CHAT_TEMPLATE


def _spans(
    tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, Any]]
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character spans of its assistant turns."""
    template = _template(tokenizer)
    full = str(tokenizer.apply_chat_template(messages, tokenize=False, chat_template=template))
    spans = []
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = (
            str(
                tokenizer.apply_chat_template(
                    messages[:index],
                    tokenize=False,
                    add_generation_prompt=True,
                    chat_template=template,
                )
            )
            if index
            else ""
        )
        through = str(
            tokenizer.apply_chat_template(
                messages[: index + 1], tokenize=False, chat_template=template
            )
        )
        if full.startswith(through) and through.startswith(before):
            spans.append((len(before), len(through)))
    return full, spans


def tokenize_example(
    tokenizer: PreTrainedTokenizerBase, example: dict[str, Any], max_length: int, loss_on: str
) -> Tokenized:
    """Token ids and labels of one example, truncated to `max_length`."""
    if "text" in example:
        text = example["text"] + (tokenizer.eos_token or "")
        ids = tokenizer(text, add_special_tokens=True)["input_ids"]
        labels = list(ids)
    else:
        text, spans = _spans(tokenizer, example["messages"])
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = encoded["input_ids"]
        if loss_on == "all" or not spans:
            labels = list(ids)
        else:
            labels = [
                token if any(start <= s and e <= end and e > s for start, end in spans) else IGNORE
                for token, (s, e) in zip(ids, encoded["offset_mapping"], strict=True)
            ]
    truncated = len(ids) > max_length
    return Tokenized(ids[:max_length], labels[:max_length], truncated)


def pack(items: list[Tokenized], max_length: int, seed: int) -> list[dict]:
    """Best-fit-decreasing packing into rows of at most `max_length` tokens.

    An example's first token is never a target: it would be predicted from the previous
    example of the row. Unpacked, position 0 is not one either; packed, its label is
    ignored, so that a row's loss (and the Trainer's label count) holds each example's
    own targets only, and a row cut between examples (`passes`) loses none.
    """
    order = sorted(range(len(items)), key=lambda i: -len(items[i].input_ids))
    bins: list[list[int]] = []
    room: list[int] = []
    for index in order:
        size = len(items[index].input_ids)
        best = min(
            (b for b in range(len(bins)) if room[b] >= size), key=lambda b: room[b], default=None
        )
        if best is None:
            bins.append([index])
            room.append(max_length - size)
        else:
            bins[best].append(index)
            room[best] -= size
    random.Random(seed).shuffle(bins)
    rows = []
    for members in bins:
        ids, labels, positions = [], [], []
        for index in members:
            ids += items[index].input_ids
            own = items[index].labels
            labels += [IGNORE] * min(1, len(own)) + own[1:]
            positions += list(range(len(items[index].input_ids)))
        rows.append({"input_ids": ids, "labels": labels, "position_ids": positions})
    return rows


def unpacked(items: list[Tokenized]) -> list[dict]:
    return [{"input_ids": t.input_ids, "labels": t.labels} for t in items]


class Collator:
    """Pads a batch to its longest row: packed rows get a trailing dummy sequence (its own
    position ids, no loss); unpacked rows get an attention mask."""

    def __init__(self, pad_id: int, packed: bool) -> None:
        self.pad_id = pad_id
        self.packed = packed

    def __call__(self, rows: list[dict]) -> dict[str, Any]:
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        batch: dict[str, list] = {"input_ids": [], "labels": []}
        batch["position_ids" if self.packed else "attention_mask"] = []
        for row in rows:
            pad = width - len(row["input_ids"])
            batch["input_ids"].append(row["input_ids"] + [self.pad_id] * pad)
            batch["labels"].append(row["labels"] + [IGNORE] * pad)
            if self.packed:
                batch["position_ids"].append(row["position_ids"] + list(range(pad)))
            else:
                batch["attention_mask"].append([1] * len(row["input_ids"]) + [0] * pad)
        return {key: torch.tensor(value) for key, value in batch.items()}


def supervised_tokens(rows: list[dict]) -> int:
    """Tokens that carry loss (a run reports them per epoch beside all tokens trained)."""
    return sum(sum(1 for label in r["labels"] if label != IGNORE) for r in rows)
