"""A learned noise schedule (Kingma et al. 2021, "Variational Diffusion Models", VDM).

γ(t) = -log SNR(t) is a monotone network of continuous t ∈ [0, 1], trained jointly with the
denoiser on the continuous-time VLB. z_t = α_t x + σ_t ε with α²_t = sigmoid(-γ(t)) and
σ²_t = sigmoid(γ(t)) (VDM eq. 3-4). Discretized on t_i = i/(T-1) it is an ordinary `Schedule`, so every
sampler and `nll_bits_per_dim` run on it, and the `Denoiser` feeds the network the same t_i.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from difflab.process import inverse_coefficients
from difflab.schedule import Schedule
from difflab.types import Target


class PositiveLinear(nn.Module):
    """A linear layer with weights softplus(w) > 0, so it is increasing in every input (VDM's monotone layers)."""

    def __init__(self, fan_in: int, fan_out: int, *, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fan_out, fan_in) / math.sqrt(fan_in))
        self.bias = nn.Parameter(torch.zeros(fan_out)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, F.softplus(self.weight), self.bias)


class MonotoneLogSNR(nn.Module):
    """γ(t) = γ_0 + (γ_1 - γ_0)·s(t): s is VDM's monotone net l1 + l3(sigmoid(l2(l1))), rescaled to s(0)=0, s(1)=1.

    Endpoints: γ_0 is free and γ_1 = γ_0 + softplus(gap) > γ_0, so γ is strictly increasing whatever the
    weights (VDM's learned schedule network, whose endpoints are also learned).
    """

    def __init__(self, gamma_min: float = -10.0, gamma_max: float = 5.0, hidden: int = 64) -> None:
        super().__init__()
        self.l1 = PositiveLinear(1, 1)
        self.l2 = PositiveLinear(1, hidden)
        # No bias: an additive constant cancels in the rescaling to s(0) = 0, so its gradient would be pure
        # rounding noise, which Adam turns into steps of size lr.
        self.l3 = PositiveLinear(hidden, 1, bias=False)
        self.gamma_min = nn.Parameter(torch.tensor(float(gamma_min)))
        gap = gamma_max - gamma_min
        self.gap = nn.Parameter(torch.tensor(gap + math.log(-math.expm1(-gap))))  # softplus⁻¹(gap)

    def shape_parameters(self) -> list[nn.Parameter]:
        """The parameters of s(t) (not the endpoints)."""
        return [*self.l1.parameters(), *self.l2.parameters(), *self.l3.parameters()]

    def endpoints(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(γ_0, γ_1) = (γ(0), γ(1))."""
        return self.gamma_min, self.gamma_min + F.softplus(self.gap)

    def _raw(self, t: torch.Tensor) -> torch.Tensor:
        h = self.l1(t[:, None])
        return (h + self.l3(torch.sigmoid(self.l2(h))))[:, 0]

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """γ at times t (N,) in [0, 1]."""
        ends = self._raw(torch.tensor([0.0, 1.0], dtype=t.dtype, device=t.device))
        s = (self._raw(t) - ends[0]) / (ends[1] - ends[0])
        g0, g1 = self.endpoints()
        return g0 + (g1 - g0) * s


def eps_from_output(
    target: Target, z: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor, out: torch.Tensor
) -> torch.Tensor:
    """ε̂ from a network output at z = α x + σ ε, with continuous α, σ (the table of `process.TARGETS`)."""
    _, _, r, s = inverse_coefficients(target, alpha, sigma)
    return r * out + s * z


@dataclass
class VDMTerms:
    """Per-sample parts of the continuous-time VLB, in nats: diffusion, prior and reconstruction."""

    diffusion: torch.Tensor
    prior: torch.Tensor
    reconstruction: torch.Tensor

    @property
    def total(self) -> torch.Tensor:
        return self.diffusion + self.prior + self.reconstruction


def vdm_terms(
    model: nn.Module,
    gamma: MonotoneLogSNR,
    target: Target,
    x: torch.Tensor,
    cond: torch.Tensor | None = None,
    *,
    generator: torch.Generator | None = None,
) -> VDMTerms:
    """The continuous-time VLB of VDM, per sample (nats), for a network `model(z, t, cond)` predicting `target`.

    Diffusion: ½ γ'(t) ‖ε - ε̂(z_t; t)‖² (VDM eq. 17) at t on VDM's low-discrepancy grid (u_0 + i/n) mod 1.
    Prior: KL(N(α_1 x, σ²_1) ‖ N(0, 1)). Reconstruction, for continuous data, a Gaussian decoder
    p(x | z_0) = N(z_0/α_0, e^{γ_0}) in expectation over z_0: ½(log 2π + γ_0 + 1) per dimension.
    """
    n, dims = x.shape[0], x[0].numel()
    u0 = torch.rand((), generator=generator, device=x.device)
    t = ((u0 + torch.arange(n, device=x.device) / n) % 1.0).requires_grad_(True)
    g = gamma(t)
    (dg,) = torch.autograd.grad(g.sum(), t, create_graph=True)
    shape = (n, *([1] * (x.ndim - 1)))
    alpha, sigma = torch.sigmoid(-g).sqrt().reshape(shape), torch.sigmoid(g).sqrt().reshape(shape)
    eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    z = alpha * x + sigma * eps
    eps_hat = eps_from_output(target, z, alpha, sigma, model(z, t.detach(), cond))
    diffusion = 0.5 * dg * (eps - eps_hat).pow(2).flatten(1).sum(1)
    g0, g1 = gamma.endpoints()
    var1 = torch.sigmoid(g1)
    prior = 0.5 * (var1 + (1.0 - var1) * x.pow(2) - 1.0 - torch.log(var1)).flatten(1).sum(1)
    reconstruction = (0.5 * (math.log(2 * math.pi) + g0 + 1.0) * dims).expand(n)
    return VDMTerms(diffusion, prior, reconstruction)


def vdm_gradients(
    terms: VDMTerms, vlb: torch.Tensor, params: Sequence[nn.Parameter], gamma: MonotoneLogSNR
) -> list[torch.Tensor | None]:
    """Gradients for `params` (the network's and γ's): of `vlb` for all but γ's shape, of E[L_diff²] for the shape.

    In continuous time the VLB does not depend on the shape of γ between its endpoints (VDM, "invariance to
    the noise schedule"), so the shape descends the estimator's second moment, i.e. its variance, as VDM does
    for its learned schedule. None marks a parameter the loss does not reach (as `.backward()` leaves it).
    """
    shape_ids = {id(p) for p in gamma.shape_parameters()}
    rest = [p for p in params if id(p) not in shape_ids]
    shape = [p for p in params if id(p) in shape_ids]
    grads_rest = torch.autograd.grad(vlb, rest, retain_graph=True, allow_unused=True)
    grads_shape = torch.autograd.grad(terms.diffusion.pow(2).mean(), shape, allow_unused=True)
    by_id = {id(p): g for p, g in zip([*rest, *shape], [*grads_rest, *grads_shape], strict=True)}
    return [by_id[id(p)] for p in params]


class LearnedScheduleModel(nn.Module):
    """A denoising network and its learned γ(t) in one module, so weights, the EMA and checkpoints carry both.

    It is called like the network alone; `schedule(T)` discretizes the current γ for samplers and the VLB.
    """

    def __init__(self, net: nn.Module, gamma: MonotoneLogSNR | None = None) -> None:
        super().__init__()
        self.net = net
        self.gamma = MonotoneLogSNR() if gamma is None else gamma

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The network's output at (x, t ∈ [0, 1], cond)."""
        return self.net(x, t, cond)

    def schedule(self, num_steps: int) -> Schedule:
        """The current γ as a `Schedule` of `num_steps` steps."""
        return discretize(self.gamma, num_steps)


@torch.no_grad()
def discretize(gamma: MonotoneLogSNR, num_steps: int) -> Schedule:
    """The `Schedule` with ᾱ_i = sigmoid(-γ(i/(T-1))), i = 0..T-1 (VDM eq. 3), computed in float64."""
    t = torch.linspace(0.0, 1.0, num_steps, dtype=torch.float64)
    g = copy.deepcopy(gamma).double()(t)
    return Schedule.from_alphas_cumprod(torch.sigmoid(-g))
