"""The forward process, its Gaussian posterior, and conversions between what a network predicts.

All functions take a `Schedule` and integer step indices `i` into it (for a full schedule, the
model timestep itself). Coefficients are computed in float64, cast to the data's dtype on the CPU
and then moved to the data's device (Apple's MPS has no float64).

Every target is one row of `TARGETS`: a network predicting y = a·x_0 + b·ε, with a and b functions of
the path's α and σ (α = √ᾱ and σ = √(1-ᾱ) on a variance-preserving path).
Since x_t = α x_0 + σ ε as well, the pair (y, x_t) determines x_0 and ε by
solving that 2×2 system, so a new target is one new row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from difflab.schedule import Schedule
from difflab.types import Target, VarianceKind, choices

Coefficients = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

#: y = a·x_0 + b·ε for each target, as (a, b) from (α, σ). v: Salimans & Ho 2022, sec. 4;
#: score: ∇ log q(x_t | x_0) = -ε/σ (Song et al. 2021, "Score-based generative modeling", eq. 7 ff.);
#: flow: the velocity dx_t/dt = ε - x_0 of the linear interpolant x_t = (1 - t) x_0 + t ε (Lipman et al. 2023,
#: eq. 23; Liu et al. 2023, eq. 1), on any path the same fixed combination of x_0 and ε.
TARGETS: dict[str, Coefficients] = {
    "x0": lambda alpha, sigma: (torch.ones_like(alpha), torch.zeros_like(alpha)),
    "eps": lambda alpha, sigma: (torch.zeros_like(alpha), torch.ones_like(alpha)),
    "v": lambda alpha, sigma: (-sigma, alpha),
    "score": lambda alpha, sigma: (torch.zeros_like(alpha), -1.0 / sigma),
    "flow": lambda alpha, sigma: (-torch.ones_like(alpha), torch.ones_like(alpha)),
}
assert set(TARGETS) == set(choices(Target))


def at(values: torch.Tensor, i: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Gather per-sample coefficients values[i] shaped to broadcast against `like` (cast before the move)."""
    out = values.to(like.dtype).to(like.device)[i.to(like.device)]
    return out.reshape(-1, *([1] * (like.ndim - 1)))


def _alpha_sigma(schedule: Schedule) -> tuple[torch.Tensor, torch.Tensor]:
    return schedule.alpha, schedule.sigma


def target_coefficients(target: str, alpha: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, b) with target = a·x_0 + b·ε at noise levels (α, σ)."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    return TARGETS[target](alpha, sigma)


def inverse_coefficients(
    target: str, alpha: torch.Tensor, sigma: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(p, q, r, s) with x_0 = p·y + q·x_t and ε = r·y + s·x_t, from [a b; α σ]·(x_0, ε) = (y, x_t)."""
    a, b = target_coefficients(target, alpha, sigma)
    det = a * sigma - b * alpha
    return sigma / det, -b / det, -alpha / det, a / det


def q_sample(schedule: Schedule, x0: torch.Tensor, i: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """x_t = α_t x_0 + σ_t ε in one step (√ᾱ_t, √(1-ᾱ_t) on a variance-preserving path; Ho et al. 2020, eq. 4)."""
    alpha, sigma = _alpha_sigma(schedule)
    return at(alpha, i, x0) * x0 + at(sigma, i, x0) * noise


def q_chain(
    schedule: Schedule, x0: torch.Tensor, *, generator: torch.Generator | None = None
) -> Iterator[torch.Tensor]:
    """Yield x_0, x_1, ..., x_{K-1} by applying q(x_t | x_{t-1}) = N(√α_t x_{t-1}, β_t I) step by step.

    Each yielded tensor is a sample of the one-step marginal q(x_t | x_0); used for figures and
    to test that the one-step formula agrees with the chain. The chain runs in the variance-preserving frame and
    each step is shown at the path's scale s_t.
    """
    x = x0
    alphas, betas, scale = schedule.alphas, schedule.betas, schedule.scale
    for i in range(len(schedule)):
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = float(alphas[i].sqrt()) * x + float(betas[i].sqrt()) * noise
        yield x if schedule.scales is None else float(scale[i]) * x


def posterior_mean(schedule: Schedule, x0: torch.Tensor, xt: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
    """μ̃_t(x_t, x_0) of q(x_{t-1} | x_t, x_0) (Ho et al. 2020, eq. 7), in the variance-preserving frame.

    On a scaled path (`Schedule.scales`) `xt` and the result are x/s: the frame samplers and the bound work in.
    """
    return at(schedule.posterior_mean_coef_x0, i, xt) * x0 + at(schedule.posterior_mean_coef_xt, i, xt) * xt


def eps_from_x0(schedule: Schedule, xt: torch.Tensor, i: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """ε = (x_t - √ᾱ x_0) / √(1-ᾱ), inverting eq. 4 of Ho et al. 2020."""
    return x0_eps_from("x0", schedule, xt, i, x0)[1]


def x0_from_eps(schedule: Schedule, xt: torch.Tensor, i: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x_0 = (x_t - √(1-ᾱ) ε) / √ᾱ (Ho et al. 2020, eq. 15)."""
    return x0_eps_from("eps", schedule, xt, i, eps)[0]


def target_from(
    target: Target,
    schedule: Schedule,
    xt: torch.Tensor,
    i: torch.Tensor,
    x0: torch.Tensor,
    eps: torch.Tensor,
) -> torch.Tensor:
    """What a network trained for `target` should output, given the true x_0 and ε: a·x_0 + b·ε."""
    a, b = target_coefficients(target, *_alpha_sigma(schedule))
    return at(a, i, xt) * x0 + at(b, i, xt) * eps


def x0_eps_from(
    target: Target, schedule: Schedule, xt: torch.Tensor, i: torch.Tensor, out: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn a network output for `target` into (predicted x_0, predicted ε): the one adapter."""
    p, q, r, s = inverse_coefficients(target, *_alpha_sigma(schedule))
    return at(p, i, xt) * out + at(q, i, xt) * xt, at(r, i, xt) * out + at(s, i, xt) * xt


def x0_error_scale(target: Target, schedule: Schedule) -> torch.Tensor:
    """c_t with ‖x_0 - x̂_0‖² = c_t ‖y - ŷ‖² for a network predicting y = `target` at step t.

    At fixed x_t, x̂_0 = p·ŷ + q·x_t, so c_t = p²: x0 → 1, ε → 1/SNR, v → 1/(SNR+1), score → (1-ᾱ)/SNR.
    Lets every weighting be written once in x_0 space (Kingma et al. 2021, eq. 13) and converted.
    """
    return x0_error_factor(target, *_alpha_sigma(schedule))


def x0_error_factor(target: Target, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """`x0_error_scale` at noise levels (α, σ) anywhere on a path: p² of x̂_0 = p·ŷ + q·x_t."""
    p, *_ = inverse_coefficients(target, alpha, sigma)
    return p**2


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
            raise ValueError("variance 'learned' needs a model trained with a learned variance")
        return var_interp * large + (1.0 - var_interp) * small
    raise ValueError(f"unknown variance {variance!r}; choose one of {', '.join(choices(VarianceKind))}")
