"""An exact denoiser for Gaussian data: E[x_0 | x_t] is closed form, so samplers can be tested untrained."""

from __future__ import annotations

import torch

from difflab.denoiser import Prediction
from difflab.process import eps_from_x0
from difflab.schedule import Schedule


class ExactGaussianDenoiser:
    """Posterior mean of x_0 ~ N(μ, Σ) given x_t = √ᾱ x_0 + √(1-ᾱ) ε.

    E[x_0 | x_t] = μ + √ᾱ Σ (ᾱ Σ + (1-ᾱ) I)⁻¹ (x_t - √ᾱ μ)  (Gaussian conditioning), in float64.
    """

    def __init__(self, mean: torch.Tensor, cov: torch.Tensor, schedule: Schedule) -> None:
        self.mean = mean.double()
        self.cov = cov.double()
        self.schedule = schedule

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> Prediction:
        ab = self.schedule.alphas_cumprod[t]  # model timesteps index the *trained* schedule
        d = self.mean.numel()
        eye = torch.eye(d, dtype=torch.float64)
        xd = x.double()
        out = torch.empty_like(xd)
        for a in ab.unique():
            rows = ab == a
            gain = a.sqrt() * self.cov @ torch.linalg.inv(a * self.cov + (1 - a) * eye)
            out[rows] = self.mean + (xd[rows] - a.sqrt() * self.mean) @ gain.T
        x0 = out.to(x.dtype)
        return Prediction(x0, eps_from_x0(self.schedule, x, t, x0))
