"""The four targets: conversions both ways, against closed forms computed in numpy float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from difflab.process import TARGETS, q_sample, target_from, x0_eps_from, x0_error_scale
from difflab.schedule import make_schedule

SCHEDULES = [make_schedule("cosine", 200), make_schedule("linear", 100)]


def _batch(schedule, seed: int = 0):
    """x_0, ε, every timestep once, and x_t, all float64."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(len(schedule))
    x0 = torch.randn(len(t), 3, generator=g, dtype=torch.float64)
    eps = torch.randn(len(t), 3, generator=g, dtype=torch.float64)
    return x0, eps, t, q_sample(schedule, x0, t, eps)


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("target", TARGETS)
def test_round_trip_is_exact(schedule, target):
    x0, eps, t, xt = _batch(schedule)
    y = target_from(target, schedule, xt, t, x0, eps)
    x0_hat, eps_hat = x0_eps_from(target, schedule, xt, t, y)
    # x_0 from ε divides by √ᾱ_{T-1} ≈ 2.5e-4 (cosine, T = 200): still far inside 1e-12 in float64.
    torch.testing.assert_close(x0_hat, x0, rtol=0, atol=1e-12)
    torch.testing.assert_close(eps_hat, eps, rtol=0, atol=1e-12)


@pytest.mark.parametrize("target", TARGETS)
def test_targets_match_numpy_closed_forms(target):
    schedule = SCHEDULES[0]
    x0, eps, t, xt = _batch(schedule, seed=1)
    ab = schedule.alphas_cumprod.numpy()[:, None]
    x0n, epsn = x0.numpy(), eps.numpy()
    expected = {
        "x0": x0n,
        "eps": epsn,
        "v": np.sqrt(ab) * epsn - np.sqrt(1 - ab) * x0n,  # Salimans & Ho 2022, sec. 4
        "score": -epsn / np.sqrt(1 - ab),
        "flow": epsn - x0n,  # Lipman et al. 2023, eq. 23 (σ_min = 0); the same combination on any path
    }[target]
    np.testing.assert_allclose(target_from(target, schedule, xt, t, x0, eps).numpy(), expected, rtol=1e-13, atol=0)


def test_score_target_is_the_gradient_of_log_q():
    """-ε/√(1-ᾱ) equals ∇_{x_t} log N(x_t; √ᾱ x_0, (1-ᾱ) I), computed by autograd."""
    schedule = SCHEDULES[0]
    x0, eps, t, xt = _batch(schedule, seed=2)
    ab = schedule.alphas_cumprod[t][:, None]
    xt = xt.clone().requires_grad_(True)
    log_q = (-0.5 * (xt - ab.sqrt() * x0) ** 2 / (1 - ab)).sum()
    (grad,) = torch.autograd.grad(log_q, xt)
    torch.testing.assert_close(target_from("score", schedule, xt.detach(), t, x0, eps), grad, rtol=1e-10, atol=0)


@pytest.mark.parametrize("target", TARGETS)
def test_x0_error_scale_converts_errors(target):
    """‖x_0 - x̂_0‖² = c_t ‖y - ŷ‖² for a perturbed network output ŷ, at every step."""
    schedule = SCHEDULES[1]
    x0, eps, t, xt = _batch(schedule, seed=3)
    y = target_from(target, schedule, xt, t, x0, eps)
    delta = 1e-3 * torch.randn(y.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    x0_hat, _ = x0_eps_from(target, schedule, xt, t, y + delta)
    lhs = ((x0 - x0_hat) ** 2).sum(1)
    rhs = x0_error_scale(target, schedule) * (delta**2).sum(1)
    torch.testing.assert_close(lhs, rhs, rtol=1e-7, atol=0)


def test_x0_error_scale_closed_forms():
    schedule = SCHEDULES[0]
    ab = schedule.alphas_cumprod.numpy()
    snr = ab / (1 - ab)
    expected = {"x0": np.ones_like(ab), "eps": 1 / snr, "v": 1 - ab, "score": (1 - ab) ** 2 / ab}
    for target, value in expected.items():
        np.testing.assert_allclose(x0_error_scale(target, schedule).numpy(), value, rtol=1e-12)


def test_unknown_target_is_rejected():
    schedule = SCHEDULES[0]
    x0, eps, t, xt = _batch(schedule)
    with pytest.raises(ValueError, match="choose one of x0, eps, v, score"):
        target_from("noise", schedule, xt, t, x0, eps)  # type: ignore[arg-type]
