"""Loss computed only where it counts.

With `loss_on: assistant` most positions of a row are prompt tokens whose labels are
ignored, yet the model's default loss projects every position onto the whole vocabulary
(hidden × vocab per token, forward and backward) before throwing it away. Here the model
is asked for logits only at positions whose next token is a label (transformers'
`logits_to_keep` with an index tensor), and the cross-entropy is summed over those and
normalised by the Trainer's count of label tokens, which keeps gradient accumulation
exact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aift.training.examples import IGNORE
from aift.training.passes import split_row


def next_token_targets(labels: Any) -> tuple[Any, Any]:
    """The positions whose next token carries loss, and those next tokens (batch × kept)."""
    import torch

    targets = torch.full_like(labels, IGNORE)
    targets[:, :-1] = labels[:, 1:]
    keep = (targets != IGNORE).any(dim=0).nonzero().flatten()
    if keep.numel() == 0:  # nothing to learn in this batch: keep one position, zero loss
        keep = torch.tensor([labels.shape[1] - 1], device=labels.device)
    return keep, targets[:, keep]


def supervised_trainer_class(
    penalty: Callable[[], Any] | None = None, pass_tokens: int | None = None
) -> type:
    """transformers' Trainer with the loss restricted to supervised positions.

    `penalty` (e.g. `EWC.penalty`) is a regulariser added to each optimizer step's
    training loss (`aift.training.penalised`). With `pass_tokens`, a one-row packed batch
    longer than that is trained in passes cut between its examples (`aift.training.passes`).
    """
    import torch
    from transformers import Trainer

    class SupervisedLossTrainer(Trainer):
        def compute_loss(
            self,
            model: torch.nn.Module,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            inputs = dict(inputs)
            keep, targets = next_token_targets(inputs.pop("labels"))
            outputs = model(**inputs, logits_to_keep=keep, use_cache=False)
            logits = outputs.logits.float()
            total = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]),
                targets.reshape(-1),
                ignore_index=IGNORE,
                reduction="sum",
            )
            count = (
                num_items_in_batch
                if num_items_in_batch is not None
                else (targets != IGNORE).sum().clamp(min=1)
            )
            loss = total / count
            if num_items_in_batch is not None and self.args.average_tokens_across_devices:
                # the count is the whole step's over every rank, and DDP averages the
                # ranks' gradients: scale back up, as transformers' own loss does
                loss = loss * self.accelerator.num_processes
            return (loss, outputs) if return_outputs else loss

        def training_step(
            self,
            model: torch.nn.Module,
            inputs: dict[str, Any],
            num_items_in_batch: Any = None,
        ) -> Any:
            if pass_tokens is None:
                return super().training_step(model, inputs, num_items_in_batch)
            # each pass's loss is its own sum over the step's label count: they add up
            pieces = split_row(inputs, pass_tokens)
            self.row_passes = len(pieces)  # a penalty counts once per row (`penalised`)
            total = None
            for piece in pieces:
                loss = super().training_step(model, piece, num_items_in_batch)
                total = loss if total is None else total + loss
            return total

    if penalty is None:
        return SupervisedLossTrainer
    from aift.training.penalised import with_penalty

    return with_penalty(SupervisedLossTrainer, penalty)
