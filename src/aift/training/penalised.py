"""A regulariser added to any Trainer's loss: a continual stage's EWC penalty, whether the
stage learns demonstrations (aift's supervised trainer) or preferences and rewards
(trl's trainers)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def with_penalty(trainer_class: type, penalty: Callable[[], Any]) -> type:
    """`trainer_class` whose training loss gains `penalty()` once per optimizer step,
    however many micro-batches accumulate into it; the mean penalty over the logged steps
    is logged as `penalty`."""

    class Penalised(trainer_class):
        _penalty_sum = 0.0
        _penalty_count = 0

        def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
            if self._penalty_count and "loss" in logs:
                logs = {**logs, "penalty": self._penalty_sum / self._penalty_count}
                self._penalty_sum, self._penalty_count = 0.0, 0
            super().log(logs, *args, **kwargs)

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            result = super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )
            if not model.training:
                return result
            loss, outputs = result if return_outputs else (result, None)
            extra = penalty()
            self._penalty_sum += float(extra.detach())
            self._penalty_count += 1
            # the Trainer divides a micro-batch's loss by the accumulation steps unless the
            # loss is already a share of the whole step's: the penalty counts once either way
            share = (
                self.current_gradient_accumulation_steps if self._scaled(num_items_in_batch) else 1
            ) * getattr(self, "row_passes", 1)  # a row trained in several passes
            loss = loss + extra / share
            return (loss, outputs) if return_outputs else loss

        def _scaled(self, num_items_in_batch: Any) -> bool:
            """Whether the Trainer takes this loss as already scaled for accumulation (its
            own rule, `Trainer.training_step`)."""
            if getattr(self, "loss_is_scaled_for_ga", None) is not None:
                return bool(self.loss_is_scaled_for_ga)
            return bool(
                (self.model_accepts_loss_kwargs and num_items_in_batch is not None)
                or self.compute_loss_func is not None
            )

    Penalised.__name__ = f"Penalised{trainer_class.__name__}"
    return Penalised
