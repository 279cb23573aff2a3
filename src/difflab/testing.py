"""Exact denoisers for Gaussian data, to test samplers with no training at all.

For data x_0 ~ N(μ, Σ) and x_t = α x_0 + σ ε (any path of `difflab.schedule`), the posterior mean is closed
form, and so is the probability-flow ODE's map from x_T to x_0; both are what a perfectly trained network and a
perfect ODE solver would give.
"""

from __future__ import annotations

import torch
from torch import nn

from difflab.process import Target, at, eps_from_x0, target_from
from difflab.schedule import Schedule


class GaussianData:
    """N(μ, Σ) in D dimensions, with Σ = U diag(d) Uᵀ kept in float64."""

    def __init__(self, mean: torch.Tensor, cov: torch.Tensor) -> None:
        self.mean = torch.as_tensor(mean, dtype=torch.float64)
        self.cov = torch.as_tensor(cov, dtype=torch.float64)
        self.eigvals, self.eigvecs = torch.linalg.eigh(self.cov)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """n float64 draws."""
        z = torch.randn((n, len(self.mean)), generator=generator, dtype=torch.float64)
        return self.mean + (z * self.eigvals.sqrt()) @ self.eigvecs.T

    def _eigen_map(self, x: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
        """U diag(gain) Uᵀ x for rows x; `gain` is (N, D) or (D,). Broadcast sums: tiny float64 matmuls are slow."""
        u = self.eigvecs.to(x.dtype)
        y = (x[:, :, None] * u).sum(1) * gain.to(x.dtype)
        return (y[:, None, :] * u).sum(-1)

    def posterior_mean(self, schedule: Schedule, xt: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """E[x_0 | x_t] = μ + α Σ (α² Σ + σ² I)⁻¹ (x_t - α μ) (Gaussian conditioning)."""
        a = at(schedule.alpha, i, xt)
        s2 = at(schedule.sigma**2, i, xt)
        d = self.eigvals.to(xt.dtype)
        mean = self.mean.to(xt.dtype)
        return mean + self._eigen_map(xt - a * mean, a * d / (a**2 * d + s2))

    def ode_solution(self, schedule: Schedule, x_T: torch.Tensor) -> torch.Tensor:
        """x_0 reached by the probability-flow ODE from x_T at the schedule's last step.

        With x̃ = x/√ᾱ and σ̃² = (1-ᾱ)/ᾱ, each eigen-component of x̃ - μ scales as √(d + σ̃²), so
        x_0 = μ + U diag(√(d / (d + σ̃_T²))) Uᵀ (x_T/√ᾱ_T - μ); from pure noise (ᾱ_T = 0) the limit
        x_0 = μ + U diag(√d) Uᵀ x_T/σ_T. `x_T` is at the path's own scale.
        """
        ab = float(schedule.alphas_cumprod[-1])
        x_T = x_T / float(schedule.scale[-1])
        mean = self.mean.to(x_T.dtype)
        if ab == 0.0:
            return mean + self._eigen_map(x_T, self.eigvals.sqrt())
        sig2 = (1.0 - ab) / ab
        return mean + self._eigen_map(x_T / ab**0.5 - mean, (self.eigvals / (self.eigvals + sig2)).sqrt())


class ExactNetwork(nn.Module):
    """A "network" that outputs the exact `target` for Gaussian data, for use inside a `Denoiser`.

    It takes the denoiser's float time t/(T-1) and recovers the integer timestep of `schedule`.
    """

    def __init__(self, data: GaussianData, schedule: Schedule, target: Target) -> None:
        super().__init__()
        self.data = data
        self.schedule = schedule
        self.target = target

    def forward(self, x: torch.Tensor, t01: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The exact target at (x_t, t)."""
        i = torch.round(t01.double() * (len(self.schedule) - 1)).long()
        x0 = self.data.posterior_mean(self.schedule, x, i)
        eps = eps_from_x0(self.schedule, x, i, x0)
        return target_from(self.target, self.schedule, x, i, x0, eps)
