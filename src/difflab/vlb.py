"""The variational bound: Gaussian KL terms, the learned-variance loss, and bits per dimension.

-log p(x_0) ≤ L_T + Σ_{t≥1} L_{t-1} + L_0 (Ho et al. 2020, eq. 5), with
L_T = KL(q(x_T|x_0) ‖ N(0, I)), L_{t-1} = KL(q(x_{t-1}|x_t, x_0) ‖ p(x_{t-1}|x_t)) and the decoder
L_0 = -log p(x_0|x_1). Every term is per sample, summed over the data's dimensions, in nats. The terms are
written in the variance-preserving frame; on a scaled path (the flow path) x_t/s_t goes in, which leaves each
KL unchanged (both Gaussians are scaled alike).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from difflab.denoiser import Denoiser, DenoiserFn
from difflab.process import at, ddpm_log_variance, posterior_mean, q_sample, x0_eps_from
from difflab.schedule import Schedule
from difflab.types import VarianceKind


def normal_kl(mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """Elementwise KL(N(m1, e^{lv1}) ‖ N(m2, e^{lv2})) = ½(lv2 - lv1 + e^{lv1-lv2} + (m1-m2)² e^{-lv2} - 1)."""
    return 0.5 * (logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2) - 1.0)


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Elementwise -log N(x; mean, e^{logvar}) = ½(log 2π + logvar + (x - mean)² e^{-logvar})."""
    return 0.5 * (math.log(2 * math.pi) + logvar + (x - mean) ** 2 * torch.exp(-logvar))


def _per_sample(values: torch.Tensor) -> torch.Tensor:
    return values.flatten(1).sum(dim=1)


def vlb_term(
    schedule: Schedule,
    x0: torch.Tensor,
    xt: torch.Tensor,
    i: torch.Tensor,
    x0_pred: torch.Tensor,
    log_var: torch.Tensor,
) -> torch.Tensor:
    """L_{t-1} at step indices i (nats per sample): a KL for i > 0, the decoder at i = 0.

    p(x_{t-1}|x_t) = N(μ̃_t(x_t, x̂_0), e^{log_var}) (Ho et al. 2020, eq. 7 and 11). The decoder is a
    *continuous* Gaussian, -log N(x_0; x̂_0, σ²_0) with σ²_0 the reverse variance at step 0 (for
    "small", the clipped β̃ of step 1), since point data is not discretized like 8-bit images.
    """
    model_mean = posterior_mean(schedule, x0_pred, xt, i)
    true_mean = posterior_mean(schedule, x0, xt, i)
    true_log_var = at(schedule.posterior_log_variance_clipped, i, xt)
    kl = _per_sample(normal_kl(true_mean, true_log_var.expand_as(xt), model_mean, log_var))
    decoder = _per_sample(gaussian_nll(x0, model_mean, log_var))
    return torch.where(i.to(xt.device) == 0, decoder, kl)


def prior_kl(schedule: Schedule, x0: torch.Tensor) -> torch.Tensor:
    """L_T = KL(N(√ᾱ_T x_0, (1-ᾱ_T) I) ‖ N(0, I)) per sample, in nats (Ho et al. 2020, eq. 5)."""
    ab = float(schedule.alphas_cumprod[-1])
    zero = torch.zeros_like(x0)
    log_var = torch.full_like(x0, math.log1p(-ab))
    return _per_sample(normal_kl(math.sqrt(ab) * x0, log_var, zero, zero))


def hybrid_vlb_loss(
    denoiser: Denoiser, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor, out: torch.Tensor
) -> torch.Tensor:
    """L_vlb ≈ T · L_{t-1} per dimension at uniform t, mean stop-gradient (Nichol & Dhariwal 2021, sec. 3.1).

    Only the variance channels of `out` receive gradient: x̂_0 is computed from the detached prediction.
    """
    if not denoiser.learned_variance:
        raise ValueError("the variational term trains a learned variance; build the denoiser with learned_variance")
    pred, var_interp = denoiser.split(out)
    x0_pred, _ = x0_eps_from(denoiser.target, denoiser.schedule, xt, t, pred.detach())
    log_var = ddpm_log_variance(denoiser.schedule, t, xt, "learned", var_interp)
    per_dim = vlb_term(denoiser.schedule, x0, xt, t, x0_pred, log_var) / x0[0].numel()
    return len(denoiser.schedule) * per_dim


@dataclass
class BitsPerDim:
    """The variational bound in bits per dimension, split into its parts (means over the data)."""

    total: float
    prior: float
    diffusion: float
    decoder: float


@torch.no_grad()
def nll_bits_per_dim(
    denoiser: DenoiserFn,
    schedule: Schedule,
    x0: torch.Tensor,
    *,
    variance: VarianceKind = "small",
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> BitsPerDim:
    """Upper bound on -log p(x_0) in bits/dim: L_T + Σ_{i≥1} L_{i-1} + L_0, over every step of `schedule`.

    Each KL term is a one-sample Monte Carlo estimate over x_t ~ q(x_t|x_0) (as in Nichol & Dhariwal
    2021, sec. 3.1); `schedule` may be respaced, giving the bound of the shorter process. `x0` is in
    the normalized units the network sees (a density there differs from the data's by the
    normalizer's log-Jacobian). bits/dim = nats / (D ln 2) with D the number of features. The bound is
    summed in float64 on the CPU; only the network runs on `device` (in float32, so MPS works too).
    """
    x0 = x0.double().cpu()
    n, dims = x0.shape[0], x0[0].numel()
    terms = torch.zeros(len(schedule), n, dtype=torch.float64)
    for i in range(len(schedule)):
        idx = torch.full((n,), i, dtype=torch.int64)
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
        xt = q_sample(schedule, x0, idx, noise)
        t = schedule.timesteps[i].expand(n)
        pred = denoiser(xt.float().to(device), t.to(device))
        var_interp = pred.var_interp.double().cpu() if pred.var_interp is not None else None
        xt = xt / float(schedule.scale[i])  # the terms in the variance-preserving frame: a KL does not see the scale
        log_var = ddpm_log_variance(schedule, idx, xt, variance, var_interp)
        terms[i] = vlb_term(schedule, x0, xt, idx, pred.x0.double().cpu(), log_var)
    scale = 1.0 / (dims * math.log(2.0))
    prior = float(prior_kl(schedule, x0).mean()) * scale
    diffusion = float(terms[1:].sum(0).mean()) * scale
    decoder = float(terms[0].mean()) * scale
    return BitsPerDim(prior + diffusion + decoder, prior, diffusion, decoder)
