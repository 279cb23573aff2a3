"""Samplers: one plain function per algorithm, all with the same signature.

`sample_X(denoiser, x_T, schedule, *, generator=None, callback=None, **options) -> x_0`

`schedule` is the process to walk: the trained one, or a respaced subset of it
(`Schedule.respace`). Step i runs from x at `schedule.timesteps[i]` to step i-1 (the data when
i = 0); the previous step is always read from the realised arrays, never computed from a
stride. `callback` receives a dict with the step index `i`, model timestep `t`, the current `x`
and the predicted `x0`, after the step's prediction.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from difflab.denoiser import DenoiserFn, Prediction
from difflab.process import at, ddpm_log_variance
from difflab.schedule import Schedule
from difflab.types import SamplerName, VarianceKind, choices

Callback = Callable[[dict[str, Any]], None]


def _predict(denoiser: DenoiserFn, x: torch.Tensor, schedule: Schedule, i: int) -> tuple[torch.Tensor, Prediction]:
    t = schedule.timesteps[i].to(x.device).expand(x.shape[0])
    return t, denoiser(x, t)


def _noise_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


@torch.no_grad()
def sample_ddpm(
    denoiser: DenoiserFn,
    x: torch.Tensor,
    schedule: Schedule,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    variance: VarianceKind = "small",
) -> torch.Tensor:
    """Ancestral sampling: x_{t-1} ~ N(μ̃_t(x_t, x̂_0), σ²_t) (Ho et al. 2020, alg. 2).

    The mean is the posterior mean of eq. 7 with the predicted x_0. The last step returns the
    mean itself: at i = 0 the posterior is a point mass on x̂_0.
    """
    for i in reversed(range(len(schedule))):
        t, pred = _predict(denoiser, x, schedule, i)
        idx = torch.full((x.shape[0],), i, dtype=torch.int64)
        mean = at(schedule.posterior_mean_coef_x0, idx, x) * pred.x0 + at(schedule.posterior_mean_coef_xt, idx, x) * x
        if callback is not None:
            callback({"i": i, "t": int(t[0]), "x": x, "x0": pred.x0})
        if i == 0:
            x = mean
        else:
            log_var = ddpm_log_variance(schedule, idx, x, variance, pred.var_interp)
            x = mean + torch.exp(0.5 * log_var) * _noise_like(x, generator)
    return x


@torch.no_grad()
def sample_ddim(
    denoiser: DenoiserFn,
    x: torch.Tensor,
    schedule: Schedule,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    eta: float = 0.0,
) -> torch.Tensor:
    """DDIM (Song et al. 2021, eq. 12): η = 0 deterministic, η = 1 ancestral-like.

    x_{t-1} = √ᾱ_{t-1} x̂_0 + √(1 - ᾱ_{t-1} - σ²) ε̂ + σ z,
    σ = η √((1 - ᾱ_{t-1}) / (1 - ᾱ_t)) √(1 - ᾱ_t / ᾱ_{t-1}) (eq. 16).
    """
    ab, ab_prev = schedule.alphas_cumprod, schedule.alphas_cumprod_prev
    for i in reversed(range(len(schedule))):
        t, pred = _predict(denoiser, x, schedule, i)
        if callback is not None:
            callback({"i": i, "t": int(t[0]), "x": x, "x0": pred.x0})
        a, a_prev = float(ab[i]), float(ab_prev[i])
        sigma = eta * ((1 - a_prev) / (1 - a) * (1 - a / a_prev)) ** 0.5
        dir_coef = max(1 - a_prev - sigma**2, 0.0) ** 0.5
        x = a_prev**0.5 * pred.x0 + dir_coef * pred.eps
        if sigma > 0 and i > 0:
            x = x + sigma * _noise_like(x, generator)
    return x


@torch.no_grad()
def sample_dpmpp_2m(
    denoiser: DenoiserFn,
    x: torch.Tensor,
    schedule: Schedule,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """DPM-Solver++(2M): multistep 2nd order in the data prediction, in λ = log(α/σ) (Lu et al. 2022b, alg. 2).

    From step s to step t with h = λ_t - λ_s and r = h_prev / h:
    x_t = (σ_t/σ_s) x_s + α_t (1 - e^{-h}) D,  D = (1 + 1/(2r)) x̂0_s - 1/(2r) x̂0_prev  (D = x̂0_s on the
    first step). The last step, to the data (σ = 0, λ = ∞), is first order and returns x̂0 itself.
    `generator` is unused (the solver is deterministic); it keeps the common signature.
    """
    return _dpmpp_multistep(denoiser, x, schedule, callback, order=2, sde=False)


@torch.no_grad()
def sample_dpmpp_3m(
    denoiser: DenoiserFn,
    x: torch.Tensor,
    schedule: Schedule,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """DPM-Solver++(3M): the multistep solver of order 3 (Lu et al. 2022b, sec. 4; Lu et al. 2022a, eq. 3.5).

    The data prediction x̂0(λ) is expanded to second order in λ around the current step, its derivatives
    estimated from the last three predictions, and the exponential integrator solved exactly:
    x_t = (σ_t/σ_s) x_s - α_t φ₁ D₀ + α_t φ₂ D₁ - 2 α_t φ₃ D₂ with φ₁ = e^{-h} - 1, φ₂ = φ₁/h + 1,
    φ₃ = (φ₁ + h)/h² - ½ and D₂ ≈ ½h² x̂0'' (see `_multistep_update`; the reference implementations lack the 2).
    The first two steps use orders 1 and 2 (too few
    predictions yet), fewer than 15 steps end with order ≤ 2 before the last, first-order step to the data
    (as DPM-Solver recommends for stability). `generator` is unused.
    """
    return _dpmpp_multistep(denoiser, x, schedule, callback, order=3, sde=False)


@torch.no_grad()
def sample_dpmpp_2m_sde(
    denoiser: DenoiserFn,
    x: torch.Tensor,
    schedule: Schedule,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """SDE-DPM-Solver++(2M): the same multistep data prediction on the reverse SDE.

    The DPM-Solver authors' SDE variant (diffusers' `sde-dpmsolver++`, which the tests match step by
    step): the linear part of the reverse SDE is solved exactly in λ, as the ODE solver does for the ODE.

    x_t = (σ_t/σ_s) e^{-h} x_s + α_t (1 - e^{-2h}) D + σ_t √(1 - e^{-2h}) z, with D as in `sample_dpmpp_2m`.
    Its first-order step is the DDPM posterior step; fresh noise at each step corrects the network's
    error as the ancestral sampler does, which the ODE cannot (circles: `benchmarks/RESULTS-samplers.md`).
    """
    return _dpmpp_multistep(denoiser, x, schedule, callback, order=2, sde=True, generator=generator)


#: Below this many steps the multistep solvers drop to order ≤ 2 on the step before the last (Lu et al. 2022b).
LOW_ORDER_BELOW = 15


def _multistep_update(
    x: torch.Tensor,
    history: list[tuple[torch.Tensor, float]],
    lam_t: float,
    alpha_t: float,
    ratio: float,
    order: int,
) -> torch.Tensor:
    """One ODE step of DPM-Solver++ of `order` (1, 2 or 3) to λ_t from the newest prediction in `history`.

    `history` holds (x̂0, λ) of the last steps, newest last; `ratio` is σ_t/σ_s. With h = λ_t - λ_s and
    r_k = (λ_{s_k} - λ_{s_{k+1}})/h, D₁ and D₂ are the first and second divided differences of x̂0 in λ,
    scaled by h and h² (Lu et al. 2022a, sec. 3.3).
    """
    m0, lam_s = history[-1]
    h = lam_t - lam_s
    phi1 = math.expm1(-h)
    out = ratio * x - alpha_t * phi1 * m0
    if order == 1:
        return out
    m1, lam_1 = history[-2]
    r0 = (lam_s - lam_1) / h
    d1_0 = (m0 - m1) / r0
    if order == 2:
        return out - 0.5 * alpha_t * phi1 * d1_0  # the midpoint form of Lu et al. 2022b, alg. 2
    m2, lam_2 = history[-3]
    r1 = (lam_1 - lam_2) / h
    d1_1 = (m1 - m2) / r1
    d1 = d1_0 + (r0 / (r0 + r1)) * (d1_0 - d1_1)
    d2 = (d1_0 - d1_1) / (r0 + r1)
    phi2 = phi1 / h + 1.0
    phi3 = (phi1 + h) / h**2 - 0.5
    # D₂ estimates ½h² x̂0'' and the exponential integral weighs h² x̂0'' by -α_t φ₃, hence the 2. DPM-Solver's
    # reference code and diffusers weigh D₂ by φ₃ alone, which makes the step second order only
    # (tests/unit/test_dpmpp_3m.py: exact for x̂0 quadratic in λ; global error order ≈ 3.9 vs 2.8).
    return out + alpha_t * phi2 * d1 - 2.0 * alpha_t * phi3 * d2


def _dpmpp_multistep(
    denoiser: DenoiserFn,
    x: torch.Tensor,
    schedule: Schedule,
    callback: Callback | None,
    *,
    order: int,
    sde: bool,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The multistep recursion shared by the ODE solvers of order 2 and 3 and the SDE solver of order 2."""
    ab = schedule.alphas_cumprod
    lam, alpha, sigma = 0.5 * schedule.log_snr, ab.sqrt(), (1.0 - ab).sqrt()
    history: list[tuple[torch.Tensor, float]] = []
    for i in reversed(range(len(schedule))):
        t, pred = _predict(denoiser, x, schedule, i)
        if callback is not None:
            callback({"i": i, "t": int(t[0]), "x": x, "x0": pred.x0})
        if i == 0:
            x = pred.x0
            continue
        # order is 2 or 3: the newest `order` predictions are all an update reads
        history = [*history[-(order - 1) :], (pred.x0, float(lam[i]))]
        k = min(order, len(history))
        if i == 1 and len(schedule) < LOW_ORDER_BELOW:
            k = min(k, 2)
        h = float(lam[i - 1] - lam[i])
        if not sde:
            x = _multistep_update(x, history, float(lam[i - 1]), float(alpha[i - 1]), float(sigma[i - 1] / sigma[i]), k)
            continue
        m0 = pred.x0
        d = m0
        if k == 2:
            m1, lam_1 = history[-2]
            half_inv_r = 0.5 * h / (float(lam[i]) - lam_1)
            d = (1.0 + half_inv_r) * m0 - half_inv_r * m1
        decay = float(sigma[i - 1] / sigma[i]) * math.exp(-h)
        x = decay * x - float(alpha[i - 1]) * math.expm1(-2 * h) * d
        x = x + float(sigma[i - 1]) * math.sqrt(-math.expm1(-2 * h)) * _noise_like(x, generator)
    return x


@torch.no_grad()
def sample_heun(
    denoiser: DenoiserFn,
    x: torch.Tensor,
    schedule: Schedule,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Heun's 2nd-order method on the probability-flow ODE (Karras et al. 2022, alg. 1, deterministic).

    In x̃ = x/√ᾱ and σ̃ = √((1-ᾱ)/ᾱ) the ODE is dx̃/dσ̃ = ε̂ (Song et al. 2021, DDIM eq. 14); an Euler
    step of it is DDIM with η = 0. Heun averages ε̂ at both ends of the step, so K steps cost 2K - 1
    model evaluations: the last step, to σ̃ = 0, is an Euler step. `generator` is unused.
    """
    ab = schedule.alphas_cumprod
    scale, sig = ab.sqrt(), ((1.0 - ab) / ab).sqrt()
    for i in reversed(range(len(schedule))):
        t, pred = _predict(denoiser, x, schedule, i)
        if callback is not None:
            callback({"i": i, "t": int(t[0]), "x": x, "x0": pred.x0})
        if i == 0:
            x = pred.x0
            continue
        step = float(sig[i - 1] - sig[i])
        x_tilde = x / float(scale[i]) + step * pred.eps
        _, pred_next = _predict(denoiser, x_tilde * float(scale[i - 1]), schedule, i - 1)
        x_tilde = x / float(scale[i]) + step * 0.5 * (pred.eps + pred_next.eps)
        x = x_tilde * float(scale[i - 1])
    return x


SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "ddpm": sample_ddpm,
    "ddim": sample_ddim,
    "dpmpp_2m": sample_dpmpp_2m,
    "dpmpp_2m_sde": sample_dpmpp_2m_sde,
    "dpmpp_3m": sample_dpmpp_3m,
    "heun": sample_heun,
}
assert set(SAMPLERS) == set(choices(SamplerName))
