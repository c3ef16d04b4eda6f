"""The EWC penalty and its Fisher estimate, checked against hand computations."""

from __future__ import annotations

import pytest
import torch

from aift.training.ewc import EWC


def linear(weights: list[float]) -> torch.nn.Linear:
    model = torch.nn.Linear(len(weights), 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([weights]))
    return model


def squared_error(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    x, y = batch
    return 0.5 * (model(x).squeeze(-1) - y) ** 2  # one loss per sample


X = torch.tensor([[1.0, 2.0], [0.5, -1.0], [3.0, 0.0]])
Y = torch.tensor([1.0, 0.0, 2.0])


def test_the_fisher_is_the_mean_squared_per_sample_gradient() -> None:
    model = linear([0.3, -0.2])
    ewc = EWC(model, lam=1.0)
    # in two batches, so samples cross batch boundaries
    fisher = ewc.fisher_of([(X[:2], Y[:2]), (X[2:], Y[2:])], squared_error, samples=10)
    w = torch.tensor([0.3, -0.2])
    by_hand = torch.stack([((w @ x) - y) * x for x, y in zip(X, Y, strict=True)]) ** 2
    assert torch.allclose(fisher["weight"], by_hand.mean(0).unsqueeze(0), atol=1e-6)
    first_two = ewc.fisher_of([(X, Y)], squared_error, samples=2)["weight"]
    assert torch.allclose(first_two, by_hand[:2].mean(0).unsqueeze(0), atol=1e-6)
    whole = ewc.fisher_of([(X, Y)], lambda m, b: squared_error(m, b).sum(), samples=5)["weight"]
    batch_grad = sum(((w @ x) - y) * x for x, y in zip(X, Y, strict=True))
    assert torch.allclose(whole, (batch_grad**2).unsqueeze(0), atol=1e-5), "a scalar: one sample"


def test_the_penalty_is_zero_at_the_anchor_and_grows_quadratically() -> None:
    model = linear([0.3, -0.2])
    ewc = EWC(model, lam=4.0)
    assert ewc.penalty().item() == 0.0, "nothing consolidated yet"
    ewc.consolidate([(X, Y)], squared_error, samples=3)
    assert ewc.penalty().item() == pytest.approx(0.0)
    fisher = ewc.fisher["weight"]
    anchor = model.weight.detach().clone()
    step = torch.tensor([[0.1, -0.05]])
    values = []
    for scale in (1.0, 2.0, 3.0):
        with torch.no_grad():
            model.weight.copy_(anchor + scale * step)
        values.append(ewc.penalty().item())
        expected = 4.0 / 2 * (fisher * (scale * step) ** 2).sum().item()
        assert values[-1] == pytest.approx(expected, rel=1e-5)
    assert values[1] == pytest.approx(4 * values[0], rel=1e-5)
    assert values[2] == pytest.approx(9 * values[0], rel=1e-5)


def test_the_gradient_of_the_penalty_is_lambda_fisher_displacement() -> None:
    model = linear([0.3, -0.2])
    ewc = EWC(model, lam=2.5)
    ewc.consolidate([(X, Y)], squared_error, samples=3)
    anchor = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(torch.tensor([[0.4, 0.7]]))
    model.zero_grad()
    ewc.penalty().backward()
    expected = 2.5 * ewc.fisher["weight"] * (model.weight.detach() - anchor)
    assert model.weight.grad is not None
    assert torch.allclose(model.weight.grad, expected, atol=1e-6)


def test_online_consolidation_decays_the_old_fisher_and_moves_the_anchor() -> None:
    model = linear([0.3, -0.2])
    ewc = EWC(model, lam=1.0, gamma=0.5)
    ewc.consolidate([(X, Y)], squared_error, samples=3)
    first = ewc.fisher["weight"].clone()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 1.0]]))
    second = ewc.fisher_of([(X[:2], Y[:2])], squared_error, samples=2)["weight"]
    ewc.consolidate([(X[:2], Y[:2])], squared_error, samples=2)
    assert torch.allclose(ewc.fisher["weight"], 0.5 * first + second, atol=1e-6)
    assert torch.equal(ewc.anchor["weight"], torch.tensor([[1.0, 1.0]]))
    assert ewc.tasks == 2


def test_the_state_round_trips_and_refuses_other_parameters(tmp_path) -> None:  # noqa: ANN001
    from safetensors.torch import load_file, save_file

    model = linear([0.3, -0.2])
    ewc = EWC(model, lam=3.0, gamma=0.9)
    ewc.consolidate([(X, Y)], squared_error, samples=3)
    with torch.no_grad():
        model.weight.add_(0.2)
    save_file(ewc.state_dict(), tmp_path / "ewc.safetensors")

    again = EWC(model)  # λ from the constructor unless asked for the saved one
    again.load_state_dict(load_file(tmp_path / "ewc.safetensors"), settings=True)
    assert (again.lam, again.gamma, again.tasks) == (3.0, 0.9, 1)
    assert again.penalty().item() == pytest.approx(ewc.penalty().item())

    other = torch.nn.Sequential(torch.nn.Linear(2, 1, bias=False))
    with pytest.raises(ValueError, match="other parameters"):
        EWC(other).load_state_dict(ewc.state_dict())


def test_a_subset_of_parameters_and_bad_settings() -> None:
    model = torch.nn.Linear(2, 1)
    ewc = EWC(model, parameters=["bias"])
    ewc.consolidate([(X, Y)], squared_error, samples=3)
    assert set(ewc.fisher) == {"bias"}
    with torch.no_grad():
        model.weight.add_(5.0)  # unprotected: no penalty
    assert ewc.penalty().item() == pytest.approx(0.0)
    with pytest.raises(ValueError, match="no parameters named"):
        EWC(model, parameters=["nope"])
    with pytest.raises(ValueError, match="gamma"):
        EWC(model, gamma=1.5)
    with pytest.raises(ValueError, match="lam"):
        EWC(model, lam=-1)
    with pytest.raises(ValueError, match="no samples"):
        EWC(model).consolidate([], squared_error)
