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
    sigmoid_alphas_cumprod,
)


def numpy_cosine(T: int, s: float = 0.008, max_beta: float = 0.999) -> np.ndarray:
    """Nichol & Dhariwal 2021, eq. 17 with β ≤ max_beta (their sec. 3.2); our t = 0 is their t = 1."""
    f = [math.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2 for u in range(T + 1)]
    betas = np.minimum([1 - f[k + 1] / f[k] for k in range(T)], max_beta)
    return np.cumprod(1 - betas)


def numpy_flow(T: int) -> np.ndarray:
    """The linear interpolant x_t = (1 - t) x_0 + t ε at t = (i+1)/T as a scaled VP path: ᾱ = α²/(α² + σ²)."""
    t = np.arange(1, T + 1) / T
    return (1 - t) ** 2 / ((1 - t) ** 2 + t**2)


def numpy_sigmoid(T: int, start: float = -3.0, end: float = 3.0, tau: float = 1.0) -> np.ndarray:
    """Jabri et al. 2022, alg. 1: ᾱ(u) = (σ(end/τ) - σ((u(end-start) + start)/τ)) / (σ(end/τ) - σ(start/τ)),
    taken at u = (t+1)/T through the step ratios, β ≤ 0.999 (as for the cosine)."""

    def sig(z: np.ndarray | float) -> np.ndarray | float:
        return 1.0 / (1.0 + np.exp(-z))

    u = np.arange(T + 1) / T
    f = (sig(end / tau) - sig((u * (end - start) + start) / tau)) / (sig(end / tau) - sig(start / tau))
    betas = np.minimum(1 - f[1:] / f[:-1], 0.999)
    return np.cumprod(1 - betas)


def numpy_linear(T: int, start: float, end: float) -> np.ndarray:
    return np.cumprod(1 - np.linspace(start, end, T))


def test_linear_and_cosine_match_numpy() -> None:
    np.testing.assert_allclose(
        linear_alphas_cumprod(200, 1e-4, 0.02).numpy(), numpy_linear(200, 1e-4, 0.02), rtol=1e-12
    )
    np.testing.assert_allclose(cosine_alphas_cumprod(200).numpy(), numpy_cosine(200), rtol=1e-12)
    # A larger offset and a cap that binds on many steps: both parameters reach the formula.
    np.testing.assert_allclose(
        cosine_alphas_cumprod(50, s=0.05, max_beta=0.2).numpy(), numpy_cosine(50, 0.05, 0.2), rtol=1e-12
    )
    capped = numpy_cosine(50, 0.05, 0.2)
    assert np.isclose(1 - capped[1:] / capped[:-1], 0.2, rtol=1e-9).sum() >= 5


@pytest.mark.parametrize(("start", "end", "tau"), [(-3.0, 3.0, 1.0), (-2.0, 4.0, 0.7), (-5.0, 1.0, 1.6)])
def test_sigmoid_matches_numpy(start: float, end: float, tau: float) -> None:
    got = sigmoid_alphas_cumprod(120, start=start, end=end, tau=tau).numpy()
    np.testing.assert_allclose(got, numpy_sigmoid(120, start, end, tau), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("T", [10, 100, 200, 1000])
def test_named_schedules_match_their_definitions(T: int) -> None:
    """make_schedule: linear is Ho et al.'s 1e-4..0.02 rescaled by 1000/T with β ≤ 0.999; series is not rescaled."""
    scale = 1000 / T
    expected = {
        "linear": numpy_linear(T, 1e-4 * scale, min(0.02 * scale, 0.999)),
        "series": numpy_linear(T, 1e-4, 0.02),
        "cosine": numpy_cosine(T),
        "sigmoid": numpy_sigmoid(T),
        "flow": numpy_flow(T),
    }
    assert set(expected) == set(SCHEDULE_NAMES)
    for name, ab in expected.items():
        s = make_schedule(name, T)
        np.testing.assert_allclose(s.alphas_cumprod.numpy(), ab, rtol=1e-12, atol=1e-300, err_msg=name)
        assert s.timesteps.tolist() == list(range(T)) and s.num_train_timesteps == T
        assert s.terminal_alpha_bar == pytest.approx(ab[-1], rel=1e-12)


def test_posterior_log_variance_clipped_replaces_the_zero_at_t0_by_step_1() -> None:
    """improved-DDPM's log(append(β̃[1], β̃[1:])): the t = 0 entry is log β̃_1, not log 0 = -inf."""
    linear = make_schedule("linear", 20)
    for s in (make_schedule("cosine", 50), linear.respace([0, 4, 9, 19]), linear.respace([9, 19])):
        ab = s.alphas_cumprod.numpy()
        ab_prev = np.concatenate([[1.0], ab[:-1]])
        var = (1 - ab / ab_prev) * (1 - ab_prev) / (1 - ab)
        got = s.posterior_log_variance_clipped.numpy()
        assert var[0] == 0.0
        assert got[0] == pytest.approx(math.log(var[1]), rel=1e-12)
        np.testing.assert_allclose(got[1:], np.log(var[1:]), rtol=1e-12)
    # A one-step process has no β̃_1: its only reverse step uses β_0.
    one = Schedule.from_alphas_cumprod(torch.tensor([0.3], dtype=torch.float64))
    assert one.posterior_log_variance_clipped.tolist() == [pytest.approx(math.log(0.7), rel=1e-12)]


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
    with pytest.raises(ValueError, match="comes from trained weights"):
        make_schedule("learned", 100)
    with pytest.raises(ValueError, match="at least 2 timesteps"):
        make_schedule("cosine", 1)
    assert len(make_schedule("cosine", 2)) == 2


def f64(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_a_schedule_accepts_exactly_the_valid_alpha_bars() -> None:
    """ᾱ strictly decreasing in (0, 1]: ᾱ = 1 (no noise yet) and one step are valid; > 1 and ties are not, and 0
    (pure noise) only at the noisiest step."""
    assert len(Schedule.from_alphas_cumprod(f64(1.0, 0.5, 1e-9))) == 3
    assert len(Schedule.from_alphas_cumprod(f64(0.4))) == 1
    assert len(Schedule.from_alphas_cumprod(f64(0.5, 0.0))) == 2
    bad_tables = (f64(0.5, 0.0, 0.0), f64(0.0, 0.5), f64(1.5, 0.5), f64(0.5, 0.5), f64(0.4, 0.5), f64(0.9, 0.5, 0.7))
    for bad in (*bad_tables, f64(-0.1)):
        with pytest.raises(ValueError, match="alphas_cumprod must"):
            Schedule.from_alphas_cumprod(bad)
    with pytest.raises(ValueError, match="float64"):
        Schedule(torch.tensor([0.5, 0.2]), torch.arange(2))
    with pytest.raises(ValueError, match="non-empty 1-D"):
        Schedule(f64(0.5, 0.2)[None], torch.arange(2)[None])
    with pytest.raises(ValueError, match="non-empty 1-D"):
        Schedule(f64(), torch.arange(0))
    with pytest.raises(ValueError, match="same length"):
        Schedule(f64(0.5, 0.2), torch.arange(3))
