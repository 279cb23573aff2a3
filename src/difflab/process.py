"""The forward process, its Gaussian posterior, and conversions between what a network predicts.

All functions take a `Schedule` and integer step indices `i` into it (for a full schedule, the
model timestep itself). Coefficients are looked up in float64 and cast to the data's dtype.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, get_args

import torch

from difflab.schedule import Schedule

Target = Literal["x0", "eps", "v", "score"]
TARGETS: tuple[str, ...] = get_args(Target)


def at(values: torch.Tensor, i: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Gather per-sample coefficients values[i] shaped to broadcast against `like`."""
    out = values.to(like.device)[i.to(like.device)].to(like.dtype)
    return out.reshape(-1, *([1] * (like.ndim - 1)))


def q_sample(schedule: Schedule, x0: torch.Tensor, i: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε in one step (Ho et al. 2020, eq. 4)."""
    ab = schedule.alphas_cumprod
    return at(ab.sqrt(), i, x0) * x0 + at((1.0 - ab).sqrt(), i, x0) * noise


def q_chain(
    schedule: Schedule, x0: torch.Tensor, *, generator: torch.Generator | None = None
) -> Iterator[torch.Tensor]:
    """Yield x_0, x_1, ..., x_{K-1} by applying q(x_t | x_{t-1}) = N(√α_t x_{t-1}, β_t I) step by step.

    Each yielded tensor is a sample of the one-step marginal q(x_t | x_0); used for figures and
    to test that the one-step formula agrees with the chain.
    """
    x = x0
    alphas, betas = schedule.alphas, schedule.betas
    for i in range(len(schedule)):
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = float(alphas[i].sqrt()) * x + float(betas[i].sqrt()) * noise
        yield x


def posterior_mean(schedule: Schedule, x0: torch.Tensor, xt: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
    """μ̃_t(x_t, x_0) of q(x_{t-1} | x_t, x_0) (Ho et al. 2020, eq. 7)."""
    return at(schedule.posterior_mean_coef_x0, i, xt) * x0 + at(schedule.posterior_mean_coef_xt, i, xt) * xt


def eps_from_x0(schedule: Schedule, xt: torch.Tensor, i: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """ε = (x_t - √ᾱ x_0) / √(1-ᾱ), inverting eq. 4 of Ho et al. 2020."""
    ab = schedule.alphas_cumprod
    return (xt - at(ab.sqrt(), i, xt) * x0) / at((1.0 - ab).sqrt(), i, xt)


def x0_from_eps(schedule: Schedule, xt: torch.Tensor, i: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x_0 = (x_t - √(1-ᾱ) ε) / √ᾱ (Ho et al. 2020, eq. 15)."""
    ab = schedule.alphas_cumprod
    return (xt - at((1.0 - ab).sqrt(), i, xt) * eps) / at(ab.sqrt(), i, xt)


def target_from(
    target: Target,
    schedule: Schedule,
    xt: torch.Tensor,
    i: torch.Tensor,
    x0: torch.Tensor,
    eps: torch.Tensor,
) -> torch.Tensor:
    """What a network trained for `target` should output, given the true x_0 and ε.

    v = √ᾱ ε - √(1-ᾱ) x_0 (Salimans & Ho 2022, sec. 4); score = ∇ log q(x_t|x_0) = -ε/√(1-ᾱ).
    """
    ab = schedule.alphas_cumprod
    if target == "x0":
        return x0
    if target == "eps":
        return eps
    if target == "v":
        return at(ab.sqrt(), i, xt) * eps - at((1.0 - ab).sqrt(), i, xt) * x0
    if target == "score":
        return -eps / at((1.0 - ab).sqrt(), i, xt)
    raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")


def x0_eps_from(
    target: Target, schedule: Schedule, xt: torch.Tensor, i: torch.Tensor, out: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn a network output for `target` into (predicted x_0, predicted ε): the one adapter.

    For v: x_0 = √ᾱ x_t - √(1-ᾱ) v and ε = √(1-ᾱ) x_t + √ᾱ v (Salimans & Ho 2022, sec. 4).
    """
    ab = schedule.alphas_cumprod
    if target == "x0":
        return out, eps_from_x0(schedule, xt, i, out)
    if target == "eps":
        return x0_from_eps(schedule, xt, i, out), out
    if target == "v":
        sa, s1a = at(ab.sqrt(), i, xt), at((1.0 - ab).sqrt(), i, xt)
        return sa * xt - s1a * out, s1a * xt + sa * out
    if target == "score":
        eps = -out * at((1.0 - ab).sqrt(), i, xt)
        return x0_from_eps(schedule, xt, i, eps), eps
    raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")


def x0_error_scale(target: Target, schedule: Schedule) -> torch.Tensor:
    """c_t with ‖x_0 - x̂_0‖² = c_t ‖y - ŷ‖² for a network predicting y = `target` at step t.

    Lets every weighting be written once in x_0 space (Kingma et al. 2021, eq. 13) and converted:
    x0 → 1, ε → 1/SNR, v → 1/(SNR+1), score → (1-ᾱ)/SNR.
    """
    snr = schedule.snr
    if target == "x0":
        return torch.ones_like(snr)
    if target == "eps":
        return 1.0 / snr
    if target == "v":
        return 1.0 / (snr + 1.0)
    if target == "score":
        return (1.0 - schedule.alphas_cumprod) / snr
    raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
