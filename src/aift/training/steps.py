"""How many optimizer steps a run makes, before it runs — and when that is too few.

With packing, a small dataset's examples fill a few rows of `max_length` tokens, and
`batch_size` counts rows: 60 short chat examples pack into 4 rows, one step an epoch, so
the default 3 epochs are 3 optimizer steps, which teach nothing. The estimate counts the
rows as packing will make them and says so when the steps are few.
"""

from __future__ import annotations

import math

from aift.training.schemas import TrainingConfig

# Fewer optimizer steps than this rarely teach a model anything (a LoRA learning 20 facts
# took ~100 steps at lr 1e-3 in our runs).
FEW_STEPS = 20


def rows_per_epoch(config: TrainingConfig, examples: int, mean_tokens: float) -> int:
    """Training rows of one epoch: the examples, or the rows packing puts them into
    (their tokens over `max_length`, about: best-fit packing leaves little room). Only
    demonstrations (objective sft) are packed."""
    if not config.packing or config.objective != "sft" or examples == 0:
        return max(1, examples)
    tokens = examples * min(mean_tokens, config.max_length)
    return max(1, min(examples, math.ceil(tokens / config.max_length)))


def planned_steps(config: TrainingConfig, rows: int) -> int:
    """Optimizer steps of the whole run over `rows` rows an epoch."""
    per_step = config.batch_size * config.gradient_accumulation
    return config.max_steps or max(1, math.ceil(math.ceil(rows / per_step) * config.epochs))


def few_steps_warning(config: TrainingConfig, examples: int, rows: int, steps: int) -> str | None:
    """What to change when the run makes too few optimizer steps to learn; None if not."""
    if steps >= FEW_STEPS:
        return None
    per_step = config.batch_size * config.gradient_accumulation
    packed = (
        f"{examples} examples pack into about {rows} row(s) of {config.max_length} tokens and "
        if config.packing and rows < examples
        else ""
    )
    return (
        f"Only {steps} optimizer step(s): {packed}each step takes {per_step} row(s). Too few "
        f"steps to learn much: set max_steps (100 or more for a small dataset), raise "
        "epochs, or lower batch_size."
    )
