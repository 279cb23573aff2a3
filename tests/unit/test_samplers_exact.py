"""Samplers driven by an exact denoiser (no training): samples must match the Gaussian data."""

from __future__ import annotations

import pytest
import torch

from difflab.denoiser import Denoiser
from difflab.samplers import sample_ddim, sample_ddpm
from difflab.schedule import Schedule, make_schedule, spaced_timesteps
from difflab.testing import ExactNetwork, GaussianData
from tests.helpers import GAUSS


def ExactGaussianDenoiser(mean: torch.Tensor, cov: torch.Tensor, schedule: Schedule) -> Denoiser:
    """An x0-predicting denoiser that is exact for N(mean, cov) data."""
    return Denoiser(ExactNetwork(GaussianData(mean, cov), schedule, "x0"), schedule, "x0")


MEAN, COV = GAUSS.mean.float(), GAUSS.cov.float()
N = 10_000


def _moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.double()
    return x.mean(0), torch.cov(x.T)


@pytest.mark.parametrize("variance", ["small", "large"])
def test_ddpm_reproduces_gaussian(variance: str) -> None:
    s = make_schedule("cosine", 200)
    den = ExactGaussianDenoiser(MEAN, COV, s)
    g = torch.Generator().manual_seed(1)
    x = sample_ddpm(den, torch.randn(N, 2, generator=g, dtype=torch.float64), s, generator=g, variance=variance)
    mean, cov = _moments(x)
    # Monte-Carlo error of the mean is ~ sqrt(0.2/10000) = 0.0045; of the covariance ~ 0.003.
    assert torch.allclose(mean, MEAN.double(), atol=0.015), mean
    assert torch.allclose(cov, COV.double(), atol=0.015), cov


def test_ddim_deterministic_converges_to_gaussian_as_steps_grow() -> None:
    """DDIM (η = 0) is a first-order ODE solver: its covariance error shrinks roughly like 1/steps."""
    s = make_schedule("cosine", 200)
    den = ExactGaussianDenoiser(MEAN, COV, s)
    errors = {}
    for k in (10, 50, 200):
        g = torch.Generator().manual_seed(2)
        x = sample_ddim(den, torch.randn(N, 2, generator=g, dtype=torch.float64), s.respace(spaced_timesteps(200, k)))
        mean, cov = _moments(x)
        assert torch.allclose(mean, MEAN.double(), atol=0.015), (k, mean)
        errors[k] = (cov - COV.double()).abs().max().item()
    assert errors[50] < errors[10] / 2.5 and errors[200] < errors[50] / 1.5, errors
    assert errors[200] < 0.012, errors


def test_series_schedule_starts_from_the_wrong_place() -> None:
    """With ᾱ_T ≈ 0.13, x_T ~ N(0, I) is not q(x_T): even an exact denoiser misses a far-off mean."""
    far = torch.tensor([3.0, 3.0])
    for name, should_match in (("cosine", True), ("series", False)):
        s = make_schedule(name, 200)
        g = torch.Generator().manual_seed(3)
        x = sample_ddpm(
            ExactGaussianDenoiser(far, COV, s), torch.randn(5000, 2, generator=g, dtype=torch.float64), s, generator=g
        )
        err = (x.mean(0) - far.double()).abs().max().item()
        assert (err < 0.03) == should_match, (name, err)


def test_callback_sees_every_step_and_last_step_is_noise_free() -> None:
    s = make_schedule("cosine", 30)
    den = ExactGaussianDenoiser(MEAN, COV, s)
    seen = []
    x_T = torch.randn(64, 2, dtype=torch.float64)
    out1 = sample_ddpm(den, x_T, s, generator=torch.Generator().manual_seed(0), callback=lambda d: seen.append(d))
    assert [d["i"] for d in seen] == list(range(29, -1, -1))
    assert seen[-1]["t"] == 0
    # The final step returns the posterior mean: x0 predicted at step 0 is the output.
    torch.testing.assert_close(out1, seen[-1]["x0"])
