"""Schedules and their derived quantities, against numpy float64 and diffusers' DDPMScheduler."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler

from difflab.schedule import (
    SCHEDULE_NAMES,
    Schedule,
    cosine_alphas_cumprod,
    linear_alphas_cumprod,
    make_schedule,
)


def numpy_cosine(T: int, s: float = 0.008) -> np.ndarray:
    f = [math.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2 for u in range(T + 1)]
    betas = np.minimum([1 - f[k + 1] / f[k] for k in range(T)], 0.999)
    return np.cumprod(1 - betas)


def test_linear_and_cosine_match_numpy() -> None:
    betas = np.linspace(1e-4, 0.02, 200)
    np.testing.assert_allclose(linear_alphas_cumprod(200, 1e-4, 0.02).numpy(), np.cumprod(1 - betas), rtol=1e-12)
    np.testing.assert_allclose(cosine_alphas_cumprod(200).numpy(), numpy_cosine(200), rtol=1e-12)


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_derived_quantities_are_consistent(name: str) -> None:
    s = make_schedule(name, 100)
    ab = s.alphas_cumprod.numpy()
    ab_prev = np.concatenate([[1.0], ab[:-1]])
    alphas = ab / ab_prev
    betas = 1 - alphas
    np.testing.assert_allclose(s.betas.numpy(), betas, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(s.snr.numpy(), ab / (1 - ab), rtol=1e-12)
    np.testing.assert_allclose(np.exp(s.log_snr.numpy()), ab / (1 - ab), rtol=1e-10)
    np.testing.assert_allclose(s.posterior_variance.numpy(), betas * (1 - ab_prev) / (1 - ab), rtol=1e-12)
    np.testing.assert_allclose(s.posterior_mean_coef_x0.numpy(), np.sqrt(ab_prev) * betas / (1 - ab), rtol=1e-12)
    np.testing.assert_allclose(s.posterior_mean_coef_xt.numpy(), np.sqrt(alphas) * (1 - ab_prev) / (1 - ab), rtol=1e-12)
    assert s.posterior_variance[0] == 0.0
    assert s.alphas_cumprod.dtype == torch.float64


def test_posterior_is_bayes_rule() -> None:
    """Independent check: condition the joint Gaussian of (x_{t-1}, x_t) given x_0 by precision addition."""
    s = make_schedule("cosine", 50)
    ab = s.alphas_cumprod.numpy()
    for t in range(1, 50):
        a_prev, alpha, beta = ab[t - 1], ab[t] / ab[t - 1], 1 - ab[t] / ab[t - 1]
        precision = 1 / (1 - a_prev) + alpha / beta
        var = 1 / precision
        coef_x0 = var * math.sqrt(a_prev) / (1 - a_prev)
        coef_xt = var * math.sqrt(alpha) / beta
        assert s.posterior_variance[t].item() == pytest.approx(var, rel=1e-9)
        assert s.posterior_mean_coef_x0[t].item() == pytest.approx(coef_x0, rel=1e-9)
        assert s.posterior_mean_coef_xt[t].item() == pytest.approx(coef_xt, rel=1e-9)


def _diffusers_step_parts(sched: DDPMScheduler, t: int) -> tuple[float, float, float]:
    """(coef of x0, coef of x_t, σ) of one diffusers DDPM step, read off its outputs."""
    one, zero = torch.ones(1, 1), torch.zeros(1, 1)

    def step(x0: torch.Tensor, xt: torch.Tensor) -> float:
        g = torch.Generator().manual_seed(7)
        return float(sched.step(x0, t, xt, generator=g).prev_sample)

    noise_only = step(zero, zero)
    z = float(torch.randn((1, 1), generator=torch.Generator().manual_seed(7)))
    sigma = noise_only / z if t > 0 else 0.0
    return step(one, zero) - noise_only, step(zero, one) - noise_only, sigma


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_matches_diffusers_ddpm(kind: str) -> None:
    T = 200
    if kind == "linear":
        ours = Schedule.from_alphas_cumprod(linear_alphas_cumprod(T, 5e-4, 0.1))
        ref = DDPMScheduler(num_train_timesteps=T, beta_start=5e-4, beta_end=0.1, prediction_type="sample")
    else:
        ours = make_schedule("cosine", T)
        ref = DDPMScheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2", prediction_type="sample")
    ref.set_timesteps(T)
    # diffusers keeps float32 buffers: agreement to float32 precision is the honest bound.
    np.testing.assert_allclose(ref.alphas_cumprod.double().numpy(), ours.alphas_cumprod.numpy(), rtol=2e-5, atol=1e-7)
    for t in [0, 1, 2, 10, 57, 100, 150, 198, 199]:
        c0, ct, sigma = _diffusers_step_parts(ref, t)
        assert c0 == pytest.approx(ours.posterior_mean_coef_x0[t].item(), rel=1e-4, abs=1e-6)
        assert ct == pytest.approx(ours.posterior_mean_coef_xt[t].item(), rel=1e-4, abs=1e-6)
        assert sigma == pytest.approx(math.sqrt(ours.posterior_variance[t].item()), rel=1e-3, abs=1e-6)


def test_series_preset_keeps_its_flaw_and_default_does_not() -> None:
    series = make_schedule("series", 200)
    assert series.terminal_alpha_bar == pytest.approx(0.13, abs=0.01)
    for name in ("cosine", "linear", "sigmoid"):
        assert make_schedule(name, 200).terminal_alpha_bar < 1e-3, name


def test_unknown_schedule_lists_choices() -> None:
    with pytest.raises(ValueError, match="cosine"):
        make_schedule("quadratic", 100)
