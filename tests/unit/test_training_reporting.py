"""Where a training run reports its metrics."""

from __future__ import annotations

import importlib.util

import pytest

from aift.errors import CapabilityMissing
from aift.training.trainer import reporters


def test_tensorboard_always_and_nothing_else_by_default() -> None:
    assert reporters(None) == ["tensorboard"]


def test_a_wandb_project_adds_wandb_or_says_what_to_install() -> None:
    if importlib.util.find_spec("wandb") is None:
        with pytest.raises(CapabilityMissing, match=r"aift\[wandb\]"):
            reporters("my-project")
    else:
        assert reporters("my-project") == ["tensorboard", "wandb"]
