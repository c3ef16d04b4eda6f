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


def next_token_targets(labels: Any) -> tuple[Any, Any]:
    """The positions whose next token carries loss, and those next tokens (batch × kept)."""
    import torch

    targets = torch.full_like(labels, IGNORE)
    targets[:, :-1] = labels[:, 1:]
    keep = (targets != IGNORE).any(dim=0).nonzero().flatten()
    if keep.numel() == 0:  # nothing to learn in this batch: keep one position, zero loss
        keep = torch.tensor([labels.shape[1] - 1], device=labels.device)
    return keep, targets[:, keep]


def supervised_trainer_class(penalty: Callable[[], Any] | None = None) -> type:
    """transformers' Trainer with the loss restricted to supervised positions.

    `penalty` (e.g. `EWC.penalty`) is a regulariser added to each optimizer step's
    training loss (`aift.training.penalised`).
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

    if penalty is None:
        return SupervisedLossTrainer
    from aift.training.penalised import with_penalty

    return with_penalty(SupervisedLossTrainer, penalty)
