"""Elastic weight consolidation (Kirkpatrick et al. 2017), online form (Schwarz et al. 2018).

A small module usable on any `torch.nn.Module`, with or without aift's trainer::

    ewc = EWC(model, lam=100.0)                     # all trainable parameters
    ewc.consolidate(task1_batches, loss_fn, samples=200)   # Fisher + anchor after task 1
    for batch in task2_batches:
        loss = loss_fn(model, batch).mean() + ewc.penalty()
        loss.backward(); optimizer.step(); optimizer.zero_grad()
    ewc.consolidate(task2_batches, loss_fn, samples=200)   # task 2 joins the one penalty
    save_file(ewc.state_dict(), "ewc.safetensors")         # travels with the output

`loss_fn(model, batch)` returns the loss of each sample in the batch (a vector) or of the
whole batch (a scalar, then the batch counts as one sample): the empirical Fisher is the
mean of squared per-sample gradients, so it needs per-sample losses to be exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch

Batch = Any
LossFn = Callable[[torch.nn.Module, Batch], torch.Tensor]

FISHER = "fisher."
ANCHOR = "anchor."
META = "meta."


class EWC:
    """Diagonal-Fisher quadratic penalty that keeps parameters near what earlier tasks needed.

    One penalty for a whole chain of tasks (online EWC): each `consolidate` decays the
    Fisher so far by `gamma`, adds the new task's, and moves the anchor θ* to the current
    parameters. `gamma=1` weighs every task alike; smaller values let old tasks fade.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        lam: float = 1.0,
        gamma: float = 1.0,
        parameters: Iterable[str] | None = None,
    ) -> None:
        if lam < 0 or not math.isfinite(lam):
            raise ValueError("lam must be a finite number >= 0")
        if not 0.0 <= gamma <= 1.0:
            raise ValueError("gamma must be between 0 and 1")
        named = dict(model.named_parameters())
        if parameters is None:
            chosen = [name for name, p in named.items() if p.requires_grad]
        else:
            chosen = list(parameters)
            unknown = [name for name in chosen if name not in named]
            if unknown:
                raise ValueError(f"the model has no parameters named {', '.join(unknown[:5])}")
        if not chosen:
            raise ValueError("EWC needs at least one parameter to protect")
        self.model = model
        self.lam = float(lam)
        self.gamma = float(gamma)
        self.params: dict[str, torch.nn.Parameter] = {name: named[name] for name in chosen}
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}
        self.tasks = 0

    # -- estimating ---------------------------------------------------------------------
    def fisher_of(self, batches: Iterable[Batch], loss_fn: LossFn, samples: int) -> dict:
        """The empirical diagonal Fisher of the current parameters: mean squared gradient
        of the per-sample loss over up to `samples` samples of `batches`."""
        if samples < 1:
            raise ValueError("samples must be at least 1")
        totals = {name: torch.zeros_like(p, dtype=torch.float32) for name, p in self.params.items()}
        seen = 0
        was_training = self.model.training
        self.model.eval()  # no dropout: the Fisher of the model as it predicts
        try:
            for batch in batches:
                losses = loss_fn(self.model, batch)
                per_sample = losses.reshape(-1) if losses.dim() else losses.reshape(1)
                for index in range(per_sample.shape[0]):
                    if seen >= samples:
                        break
                    grads = torch.autograd.grad(
                        per_sample[index],
                        list(self.params.values()),
                        retain_graph=index + 1 < per_sample.shape[0],
                        allow_unused=True,
                    )
                    for name, grad in zip(self.params, grads, strict=True):
                        if grad is not None:
                            totals[name] += grad.detach().float() ** 2
                    seen += 1
                if seen >= samples:
                    break
        finally:
            self.model.train(was_training)
        if seen == 0:
            raise ValueError("no samples to estimate the Fisher information from")
        return {name: total / seen for name, total in totals.items()}

    def consolidate(self, batches: Iterable[Batch], loss_fn: LossFn, samples: int = 200) -> None:
        """End of a task: fold its Fisher into the penalty and anchor at θ now."""
        new = self.fisher_of(batches, loss_fn, samples)
        for name, value in new.items():
            old = self.fisher.get(name)
            self.fisher[name] = value if old is None else self.gamma * old + value
            self.anchor[name] = self.params[name].detach().clone()
        self.tasks += 1

    # -- using --------------------------------------------------------------------------
    def penalty(self) -> torch.Tensor:
        """λ/2 · Σ F·(θ − θ*)² (zero before the first consolidation)."""
        first = next(iter(self.params.values()))
        total = torch.zeros((), device=first.device, dtype=torch.float32)
        if not self.fisher or self.lam == 0:
            return total
        for name, param in self.params.items():
            fisher = self.fisher[name].to(param.device)
            anchor = self.anchor[name].to(param.device)
            total = total + (fisher * (param.float() - anchor.float()) ** 2).sum()
        return self.lam / 2 * total

    # -- saving -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Fisher, anchor and settings as flat tensors (safetensors can store them)."""
        state: dict[str, torch.Tensor] = {}
        for name in self.fisher:
            state[FISHER + name] = self.fisher[name].detach().cpu().contiguous()
            state[ANCHOR + name] = self.anchor[name].detach().cpu().contiguous()
        state[META + "lam"] = torch.tensor(self.lam, dtype=torch.float64)
        state[META + "gamma"] = torch.tensor(self.gamma, dtype=torch.float64)
        state[META + "tasks"] = torch.tensor(self.tasks, dtype=torch.int64)
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor], settings: bool = False) -> None:
        """Restore Fisher and anchor (and λ, γ when `settings`); names must match."""
        fisher = {k[len(FISHER) :]: v for k, v in state.items() if k.startswith(FISHER)}
        anchor = {k[len(ANCHOR) :]: v for k, v in state.items() if k.startswith(ANCHOR)}
        if set(fisher) != set(anchor):
            raise ValueError("the EWC state has Fisher and anchor for different parameters")
        if fisher and set(fisher) != set(self.params):
            missing = sorted(set(self.params) - set(fisher))[:3]
            extra = sorted(set(fisher) - set(self.params))[:3]
            raise ValueError(
                "the EWC state is for other parameters "
                f"(missing {missing or 'none'}, unexpected {extra or 'none'})"
            )
        for name, value in fisher.items():
            if value.shape != self.params[name].shape or anchor[name].shape != value.shape:
                raise ValueError(f"the EWC state of {name} has another shape")
        device = next(iter(self.params.values())).device
        self.fisher = {k: v.float().to(device) for k, v in fisher.items()}
        self.anchor = {k: v.to(device) for k, v in anchor.items()}
        self.tasks = int(state.get(META + "tasks", torch.tensor(len(fisher) and 1)).item())
        if settings:
            self.lam = float(state[META + "lam"].item())
            self.gamma = float(state[META + "gamma"].item())
