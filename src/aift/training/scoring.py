"""How well a model does on examples, scored one example at a time: the mean token loss
on the supervised tokens and, where asked, whether greedy decoding reproduces each
example's answer. What a continual chain scores every task with after each stage, and
what a run's before/after evaluation compares."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from aift.training.examples import IGNORE, Tokenized, tokenize_example
from aift.training.schemas import ExampleScore

if TYPE_CHECKING:
    import torch


def example_batches(
    tokenizer: Any, examples: Iterable[dict], max_length: int, loss_on: str
) -> list[Tokenized]:
    """Each example tokenized on its own (no packing), those with a label only."""
    items = [tokenize_example(tokenizer, e, max_length, loss_on) for e in examples]
    return [t for t in items if any(label != IGNORE for label in t.labels[1:])]


def example_loss(model: torch.nn.Module, item: Tokenized) -> torch.Tensor:
    """Mean next-token loss of one example over its supervised tokens (a 1-vector)."""
    import torch

    ids = torch.tensor([item.input_ids])
    device = next(model.parameters()).device
    ids = ids.to(device)
    labels = torch.tensor([item.labels[1:] + [IGNORE]], device=device)
    positions = torch.arange(ids.shape[1], device=device).unsqueeze(0)
    logits = model(input_ids=ids, position_ids=positions, use_cache=False).logits.float()
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE
    )
    return loss.reshape(1)


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().strip(".!?。").strip().lower()


EXACT_BATCH = 8  # greedy answers generated together (left-padded)


def _prompt_and_reference(tokenizer: Any, example: dict) -> tuple[str, str] | None:
    """The example's prompt (its turns before the last, with the generation prompt) and
    its last assistant turn; None when it does not end with one."""
    messages = example.get("messages") or []
    if not messages or messages[-1]["role"] != "assistant":
        return None
    from aift.models.tokenizers import DEFAULT_CHAT_TEMPLATE

    prompt = tokenizer.apply_chat_template(
        messages[:-1],
        tokenize=False,
        add_generation_prompt=True,
        chat_template=tokenizer.chat_template or DEFAULT_CHAT_TEMPLATE,
    )
    return prompt, str(messages[-1]["content"])


def exact_matches(
    model: Any, tokenizer: Any, examples: list[dict], max_length: int
) -> list[bool | None]:
    """For each example, whether greedy decoding reproduces its last assistant turn (None:
    no such turn). Prompts are decoded `EXACT_BATCH` at a time, left-padded: on a CPU one
    batched step costs little more than one row's."""
    verdicts: list[bool | None] = [None] * len(examples)
    todo = []
    for i, example in enumerate(examples):
        pair = _prompt_and_reference(tokenizer, example)
        if pair is not None:
            todo.append((i, *pair))
    for start in range(0, len(todo), EXACT_BATCH):
        batch = todo[start : start + EXACT_BATCH]
        answers = _greedy(
            model, tokenizer, [p for _, p, _ in batch], [r for _, _, r in batch], max_length
        )
        for (i, _, reference), answer in zip(batch, answers, strict=True):
            verdicts[i] = _normalise(answer) == _normalise(reference)
    return verdicts


def _greedy(
    model: Any, tokenizer: Any, prompts: list[str], references: list[str], max_length: int
) -> list[str]:
    """Greedy continuations of `prompts` (left-padded into one batch), each up to the
    longest reference's length and a few tokens more."""
    import torch

    rows = [tokenizer(p, add_special_tokens=False)["input_ids"][-max_length:] for p in prompts]
    budget = max(len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in references) + 8
    width = max(len(row) for row in rows)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    ids = torch.tensor([[pad] * (width - len(row)) + row for row in rows], device=device)
    mask = torch.tensor([[0] * (width - len(row)) + [1] * len(row) for row in rows], device=device)
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=budget,
            do_sample=False,
            pad_token_id=pad,
            use_cache=True,
        )
    return [
        tokenizer.decode(out[row, width:], skip_special_tokens=True) for row in range(len(rows))
    ]


def reply_logprob(model: Any, tokenizer: Any, messages: list[dict], max_length: int) -> float:
    """Sum of the log-probabilities of a conversation's assistant tokens (the reply after
    its prompt: the prompt's own turns are the same in both replies of a pair)."""
    item = tokenize_example(tokenizer, {"messages": messages}, max_length, "assistant")
    count = sum(1 for label in item.labels[1:] if label != IGNORE)
    return -float(example_loss(model, item)) * count if count else float("-inf")


def preference_rate(
    model: Any,
    tokenizer: Any,
    pairs: list[dict],
    max_length: int,
    stop: Callable[[], None] = lambda: None,
) -> float | None:
    """The share of preference pairs whose chosen reply the model finds likelier than the
    rejected one (sums of token log-probabilities) — the property DPO, ORPO, SimPO and
    KTO move, measured on the model alone (no reference model). None without pairs."""
    import torch

    wins = []
    model.eval()
    with torch.no_grad():
        for pair in pairs:
            stop()
            chosen = reply_logprob(model, tokenizer, pair["prompt"] + pair["chosen"], max_length)
            rejected = reply_logprob(
                model, tokenizer, pair["prompt"] + pair["rejected"], max_length
            )
            wins.append(chosen > rejected)
    return sum(wins) / len(wins) if wins else None


def score_examples(
    model: Any,
    tokenizer: Any,
    examples: list[dict],
    max_length: int,
    loss_on: str,
    exact: bool,
    stop: Callable[[], None] = lambda: None,
) -> ExampleScore:
    """Mean token loss over `examples` (weighted by their supervised tokens) and, when
    `exact`, the share of them whose answer greedy decoding reproduces."""
    import torch

    items = example_batches(tokenizer, examples, max_length, loss_on)
    total, tokens = 0.0, 0
    model.eval()
    with torch.no_grad():
        for item in items:
            stop()
            count = sum(1 for label in item.labels[1:] if label != IGNORE)
            total += float(example_loss(model, item)) * count
            tokens += count
    matched: float | None = None
    if exact:
        verdicts = []
        for start in range(0, len(examples), EXACT_BATCH):
            stop()
            found = exact_matches(
                model, tokenizer, examples[start : start + EXACT_BATCH], max_length
            )
            verdicts += [verdict for verdict in found if verdict is not None]
        matched = sum(verdicts) / len(verdicts) if verdicts else None
    return ExampleScore(
        loss=total / tokens if tokens else None, exact_match=matched, examples=len(examples)
    )
