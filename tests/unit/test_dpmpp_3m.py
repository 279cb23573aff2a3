"""DPM-Solver++(3M): exact where its Taylor expansion is, third order in λ, and as diffusers up to its order 3 terms.

The update integrates x_t = (σ_t/σ_s) x_s + σ_t ∫ e^λ x̂0(λ) dλ with x̂0 expanded to second order in λ. For
x̂0(λ) = a + bλ + cλ² the integral is written out here independently, so the update must be exact. DPM-Solver's
reference code and diffusers weigh the second divided difference half as much; they agree with difflab on every
step taken with order 1 or 2, and differ (by design) on order-3 steps.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from diffusers import DPMSolverMultistepScheduler

from difflab.samplers import _multistep_update, sample_dpmpp_3m
from difflab.schedule import make_schedule, spaced_timesteps
from tests.unit.test_samplers import (
    T,
    eps_denoiser,
    from_diffusers,
    lambda_even_errors,
    matched_pair,
    pseudo_eps,
    x_T,
)


def exact_step(x: float, lam_s: float, lam_t: float, sigma_s: float, sigma_t: float, coef: tuple[float, ...]) -> float:
    """x_t for x̂0(λ) = Σ c_k λ^k, by numerical quadrature of σ_t ∫ e^λ x̂0(λ) dλ (independent of the solver)."""
    grid = np.linspace(lam_s, lam_t, 200_001)
    integrand = np.exp(grid) * sum(c * grid**k for k, c in enumerate(coef))
    return sigma_t / sigma_s * x + sigma_t * np.trapezoid(integrand, grid)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.3, 0.5, 0.8), (1.7, 0.4, 0.9)])
def test_the_order_3_update_is_exact_for_a_quadratic_prediction(spacing: tuple[float, float, float]) -> None:
    h, h0, h1 = spacing
    lam_s = -0.4
    lams = [lam_s - h0 - h1, lam_s - h0, lam_s]
    lam_t = lam_s + h
    coef = (0.3, -0.7, 0.45)
    f = lambda lam: sum(c * lam**k for k, c in enumerate(coef))  # noqa: E731
    sigma = lambda lam: (1.0 / (1.0 + math.exp(2 * lam))) ** 0.5  # noqa: E731  (σ² = sigmoid(-2λ), α² = sigmoid(2λ))
    alpha_t = (1.0 / (1.0 + math.exp(-2 * lam_t))) ** 0.5
    history = [(torch.tensor([f(lam)], dtype=torch.float64), lam) for lam in lams]
    x = torch.tensor([0.8], dtype=torch.float64)
    out = _multistep_update(x, history, lam_t, alpha_t, sigma(lam_t) / sigma(lam_s), 3)
    assert float(out) == pytest.approx(exact_step(0.8, lam_s, lam_t, sigma(lam_s), sigma(lam_t), coef), abs=1e-9)


@pytest.mark.parametrize("steps", [1, 2, 3, 7, 25])
def test_steps_of_order_1_and_2_match_diffusers(steps: int) -> None:
    """diffusers' DPMSolverMultistepScheduler(solver_order=3) takes orders 1, 2, 3, 3, ...: the states up to the
    first order-3 step agree with difflab's (a chain of ≤ 3 steps agrees throughout)."""
    _, kw = matched_pair()
    ref = DPMSolverMultistepScheduler(
        **kw, algorithm_type="dpmsolver++", solver_order=3, lower_order_final=True, final_sigmas_type="zero"
    )
    full = from_diffusers(ref)
    schedule = full.respace(spaced_timesteps(T, steps, "trailing"))
    ref.set_timesteps(timesteps=schedule.timesteps.flip(0).tolist())
    ours: list[torch.Tensor] = []
    out = sample_dpmpp_3m(eps_denoiser(full), x_T(), schedule, callback=lambda d: ours.append(d["x"].clone()))
    x, theirs = x_T(), []
    for t in ref.timesteps:
        theirs.append(x)
        x = ref.step(pseudo_eps(x, t.expand(len(x))), t, x).prev_sample
    agree = min(steps, 3)  # states before the first order-3 step
    torch.testing.assert_close(torch.stack(ours[:agree]), torch.stack(theirs[:agree]), atol=1e-4, rtol=1e-4)
    if steps <= 3:
        torch.testing.assert_close(out, x, atol=1e-4, rtol=1e-4)
    else:
        assert not torch.allclose(out, x, atol=1e-4)


def test_third_order_convergence_on_the_exact_ode() -> None:
    """Steps evenly in λ on a fine cosine schedule, an exact denoiser for Gaussian data: the error falls with
    the number of steps K faster than K⁻³ (measured 3.9) and faster than DPM-Solver++(2M)'s."""
    errors, order = lambda_even_errors(["dpmpp_2m", "dpmpp_3m"], [20, 40, 80])
    assert all(b < a for a, b in itertools.pairwise(errors["dpmpp_3m"]))
    assert order > 3.0 and errors["dpmpp_3m"][-1] < errors["dpmpp_2m"][-1] / 5, (errors, order)


@pytest.mark.parametrize(("steps", "before_last"), [(3, 2), (14, 2), (15, 3), (16, 3)])
def test_fewer_than_15_steps_take_order_2_before_the_last(
    steps: int, before_last: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lu et al. 2022b's advice for short chains: the orders used are 1, 2, 3, ..., then ≤ 2 before the final
    first-order step to the data when there are fewer than 15 steps; 15 and more keep order 3 there."""
    import difflab.samplers as samplers

    orders: list[int] = []
    real = samplers._multistep_update

    def spy(*args: object) -> torch.Tensor:
        orders.append(int(args[-1]))  # type: ignore[call-overload]
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(samplers, "_multistep_update", spy)
    full = make_schedule("cosine", T)
    sample_dpmpp_3m(eps_denoiser(full), x_T(), full.respace(spaced_timesteps(T, steps, "trailing")))
    assert orders == [min(k + 1, 3) for k in range(steps - 2)] + [before_last]
