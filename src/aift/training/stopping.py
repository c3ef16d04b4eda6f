"""How long a training run needs to stop cleanly, from its own observed timings.

A cancel lets the step in hand finish, then saves a checkpoint. On a loaded 2-core
machine, or for a 7B model on CPU, that takes far longer than any fixed grace period,
so the run tells its supervisor (`JobContext.stop_needs`) how long it needs, from the
step, evaluation and save times it has measured so far.
"""

from __future__ import annotations

from collections import deque

# Never ask for less than this: process teardown, logging, a slow disk.
BASE_SECONDS = 10.0
# A loaded machine can be several times slower than the steps measured so far.
SLOWDOWN = 3.0
# Before a save was timed: bytes written per second, assumed low (network disks).
ASSUMED_SAVE_BYTES_PER_SECOND = 50e6


class StopBudget:
    """Keeps the recent step, evaluation and save durations of one run."""

    def __init__(self, checkpoint_bytes: int, eval_batches: int) -> None:
        self.checkpoint_bytes = checkpoint_bytes
        self.eval_batches = eval_batches
        self.steps: deque[float] = deque(maxlen=8)
        self.eval_seconds: float | None = None
        self.save_seconds: float | None = None

    def step_took(self, seconds: float) -> None:
        self.steps.append(max(0.0, seconds))

    def eval_took(self, seconds: float) -> None:
        self.eval_seconds = max(0.0, seconds)

    def save_took(self, seconds: float) -> None:
        self.save_seconds = max(0.0, seconds)

    @property
    def step_estimate(self) -> float:
        return max(self.steps, default=0.0)

    @property
    def save_estimate(self) -> float:
        """The last measured save, else the checkpoint size at a modest disk speed."""
        if self.save_seconds is not None:
            return self.save_seconds
        return 2.0 + self.checkpoint_bytes / ASSUMED_SAVE_BYTES_PER_SECOND

    @property
    def eval_estimate(self) -> float:
        """The last measured evaluation, else a training step per validation batch."""
        if self.eval_seconds is not None:
            return self.eval_seconds
        return self.eval_batches * self.step_estimate

    def needed(self, *, evaluating: bool = False, saving: bool = False) -> float:
        """Seconds a stop asked for now needs: the rest of the work in hand, then a save.

        `evaluating` / `saving`: an evaluation or a save is about to run before the next
        step (they run before the stop is noticed).
        """
        work = self.step_estimate + (self.eval_estimate if evaluating else 0.0)
        saves = 2 if saving else 1  # a save under way, then the one the cancel makes
        return BASE_SECONDS + SLOWDOWN * (work + saves * self.save_estimate)


def checkpoint_bytes(model: object) -> int:
    """Bytes a checkpoint of `model` writes: trainable weights plus Adam's two moments."""
    trainable = sum(
        p.numel() * p.element_size()
        for p in model.parameters()  # type: ignore[attr-defined]
        if p.requires_grad
    )
    return trainable * 3
