"""Samplers: one plain function per algorithm, all with the same signature.

`sample_X(denoiser, x_T, schedule, *, generator=None, callback=None, **options) -> x_0`

`schedule` is the process to walk: the trained one, or a respaced subset of it
(`Schedule.respace`). Step i runs from x at `schedule.timesteps[i]` to step i-1 (the data when
i = 0); the previous step is always read from the realised arrays, never computed from a
stride. `callback` receives a dict with the step index `i`, model timestep `t`, the current `x`
and the predicted `x0`, after the step's prediction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, get_args

import torch

from difflab.denoiser import DenoiserFn, Prediction
from difflab.process import at
from difflab.schedule import Schedule

Callback = Callable[[dict[str, Any]], None]
VarianceKind = Literal["small", "large", "learned"]
VARIANCE_KINDS: tuple[str, ...] = get_args(VarianceKind)


def _predict(denoiser: DenoiserFn, x: torch.Tensor, schedule: Schedule, i: int) -> tuple[torch.Tensor, Prediction]:
    t = schedule.timesteps[i].to(x.device).expand(x.shape[0])
    return t, denoiser(x, t)


def _noise_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def ddpm_log_variance(
    schedule: Schedule,
    i: torch.Tensor,
    like: torch.Tensor,
    variance: VarianceKind,
    var_interp: torch.Tensor | None,
) -> torch.Tensor:
    """log σ²_t of the reverse step: log β̃_t ("small"), log β_t ("large"), or learned.

    Learned: log σ² = v log β_t + (1 - v) log β̃_t (Nichol & Dhariwal 2021, eq. 15).
    """
    small = at(schedule.posterior_log_variance_clipped, i, like)
    large = at(torch.log(schedule.betas), i, like)
    if variance == "small":
        return small.expand_as(like)
    if variance == "large":
        return large.expand_as(like)
    if variance == "learned":
        if var_interp is None:
            raise ValueError("variance='learned' needs a model trained with a learned variance")
        return var_interp * large + (1.0 - var_interp) * small
    raise ValueError(f"unknown variance {variance!r}; choose one of {', '.join(VARIANCE_KINDS)}")


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
