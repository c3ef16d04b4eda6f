"""The Trainer callback that reports a run's progress and honours cancel.

Imported only when a run starts (it subclasses transformers' TrainerCallback, and
transformers loads lazily everywhere else).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from aift.training.stopping import StopBudget
from aift.work.control import Work

# A preference or reward objective's figures in the progress line (trl's names).
OBJECTIVE_SHOWN = (
    ("rewards/accuracies", "pref acc"),
    ("rewards/margins", "margin"),
    ("reward", "reward"),
    ("kl", "kl"),
    ("accuracy", "accuracy"),  # a reward model's
    ("margin", "margin"),
)


def step_message(
    step: int, max_steps: int, last: dict[str, float], tokens_s: float, eta: float
) -> str:
    """The one-line progress message of a training step."""
    parts = [f"step {step}/{max_steps}"]
    if "loss" in last:
        parts.append(f"loss {last['loss']:.4f}")
    if "learning_rate" in last:
        parts.append(f"lr {last['learning_rate']:.2e}")
    if "grad_norm" in last:
        parts.append(f"grad {last['grad_norm']:.3f}")
    if "eval_loss" in last:
        parts.append(f"val {last['eval_loss']:.4f}")
    for key, label in OBJECTIVE_SHOWN:
        if key in last:
            parts.append(f"{label} {last[key]:.3f}")
    parts += [f"{tokens_s:.0f} tok/s", f"ETA {eta:.0f}s"]
    return ", ".join(parts)


class ProgressCallback(TrainerCallback):
    """Reports step, loss, learning rate, grad norm, tokens/s and ETA; honours cancel.

    After each step it tells the supervisor how long a clean stop would take now
    (`budget`), and says "saving checkpoint…" while one is written.
    """

    def __init__(
        self, ctx: Work, metrics_file: Path, tokens_per_step: float, budget: StopBudget
    ) -> None:
        self.ctx = ctx
        self.metrics_file = metrics_file
        self.tokens_per_step = tokens_per_step
        self.budget = budget
        self.started = time.monotonic()
        self.first_step: int | None = None
        self.cancelled = False
        self.last: dict[str, float] = {}
        self.step_started: float | None = None
        self.eval_started: float | None = None
        self.save_started: float | None = None

    def on_step_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        self.step_started = time.monotonic()

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kw: Any,
    ) -> None:
        logs = dict(logs or {})
        logs["step"] = state.global_step
        self.last.update({k: v for k, v in logs.items() if isinstance(v, int | float)})
        if state.is_world_process_zero:  # one writer in a distributed run
            with open(self.metrics_file, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(logs) + "\n")

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> TrainerControl | None:
        now = time.monotonic()
        if self.step_started is not None:
            self.budget.step_took(now - self.step_started)
        if self.first_step is None:  # rates count from the start of this run's first step
            self.first_step = state.global_step - 1
            self.started = self.step_started if self.step_started is not None else now
        message = self._report_step(state, now)
        if self.ctx.cancelled() and not self.cancelled:
            self.cancelled = True
            control.should_save = True
            control.should_evaluate = False  # the checkpoint first, nothing else
            control.should_training_stop = True
        self._announce(state, control, message)
        return control

    def _report_step(self, state: TrainerState, now: float) -> str:
        """Send the step's metrics (rates, ETA) and return its progress message."""
        assert self.first_step is not None
        done = state.global_step - self.first_step
        rate = done / max(now - self.started, 1e-9)
        eta = (state.max_steps - state.global_step) / rate if rate else 0
        tokens_s = rate * self.tokens_per_step
        self.ctx.metrics(
            {
                **self.last,
                "step": state.global_step,
                "max_steps": state.max_steps,
                "tokens_per_second": tokens_s,
                "eta_seconds": eta,
            }
        )
        return step_message(state.global_step, state.max_steps, self.last, tokens_s, eta)

    def _announce(self, state: TrainerState, control: TrainerControl, message: str) -> None:
        """Progress and the time a clean stop needs now, saying so when a checkpoint is
        written next (an evaluation and a save take longer to stop after)."""
        fraction = state.global_step / max(state.max_steps, 1)
        evaluating = bool(control.should_evaluate)
        if control.should_save:
            self.ctx.stop_needs(self.budget.needed(evaluating=evaluating, saving=True))
            prefix = "cancel requested — " if self.cancelled else ""
            self.ctx.progress(
                fraction, f"{prefix}saving checkpoint at step {state.global_step}…", force=True
            )
            self.save_started = time.monotonic()
        else:
            self.ctx.stop_needs(self.budget.needed(evaluating=evaluating))
            self.ctx.progress(fraction, message)
        if evaluating:
            self.eval_started = time.monotonic()

    def on_evaluate(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        if self.eval_started is not None:
            self.budget.eval_took(time.monotonic() - self.eval_started)
            self.eval_started = None
        if self.save_started is not None:  # the save runs after the evaluation
            self.save_started = time.monotonic()

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        if self.save_started is not None:
            self.budget.save_took(time.monotonic() - self.save_started)
            self.save_started = None
            self.ctx.log.info("checkpoint saved at step %d", state.global_step)
            self.ctx.stop_needs(self.budget.needed())
