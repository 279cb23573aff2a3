"""Training objectives: timestep weightings per target against closed forms computed independently in numpy
float64, the element losses, and the objective's behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from difflab.denoiser import Denoiser
from difflab.objectives import DenoisingObjective, elbo_x0_weight, elementwise_loss, target_weight
from difflab.process import TARGETS
from difflab.schedule import make_schedule

SCHEDULE = make_schedule("cosine", 200)
GAMMA = 5.0


def _numpy_quantities():
    ab = SCHEDULE.alphas_cumprod.numpy()
    ab_prev = np.concatenate([[1.0], ab[:-1]])
    beta = 1 - ab / ab_prev
    snr = ab / (1 - ab)
    return ab, ab_prev, beta, snr


def _normalized(w: np.ndarray) -> np.ndarray:
    return w / w.mean()


def test_elbo_x0_weight_is_the_kl_coefficient():
    """L_{t-1} = ‖μ̃ - μ_θ‖² / (2β̃_t) with μ̃ - μ_θ = coef_x0 (x_0 - x̂_0) (Ho et al. 2020, eqs. 7, 8)."""
    ab, ab_prev, beta, _ = _numpy_quantities()
    var = beta * (1 - ab_prev) / (1 - ab)
    coef = np.sqrt(ab_prev) * beta / (1 - ab)
    expected = np.empty_like(ab)
    expected[1:] = coef[1:] ** 2 / (2 * var[1:])
    expected[0] = 1 / (2 * beta[0])  # decoder N(x_0; x̂_0, β_0 I)
    np.testing.assert_allclose(elbo_x0_weight(SCHEDULE).numpy(), expected, rtol=1e-9)


def test_elbo_eps_weight_is_ho_et_al_eq_12():
    """ε target: β_t² / (2σ_t² α_t (1 - ᾱ_t)) with σ_t² = β̃_t (Ho et al. 2020, eq. 12); t = 0 by the decoder."""
    ab, ab_prev, beta, snr = _numpy_quantities()
    var = beta * (1 - ab_prev) / (1 - ab)
    alpha = 1 - beta
    expected = np.empty_like(ab)
    expected[1:] = beta[1:] ** 2 / (2 * var[1:] * alpha[1:] * (1 - ab[1:]))
    expected[0] = 1 / (2 * beta[0]) / snr[0]
    np.testing.assert_allclose(target_weight("elbo", "eps", SCHEDULE).numpy(), _normalized(expected), rtol=1e-9)


@pytest.mark.parametrize("target", TARGETS)
def test_elbo_weight_per_target(target):
    """λ_t = ½(SNR_{t-1} - SNR_t) on ‖x_0 - x̂_0‖², times c_t: 1, 1/SNR, 1-ᾱ, (1-ᾱ)²/ᾱ."""
    ab, _, beta, snr = _numpy_quantities()
    lam = np.empty_like(ab)
    lam[1:] = 0.5 * (snr[:-1] - snr[1:])
    lam[0] = 0.5 / beta[0]
    factor = {"x0": 1.0, "eps": 1 / snr, "v": 1 - ab, "score": (1 - ab) ** 2 / ab}[target]
    np.testing.assert_allclose(target_weight("elbo", target, SCHEDULE).numpy(), _normalized(lam * factor), rtol=1e-9)


@pytest.mark.parametrize("target", TARGETS)
def test_min_snr_weight_per_target(target):
    """Hang et al. 2023, eq. 7 and sec. 3.4: x0 min(SNR,γ), ε min(SNR,γ)/SNR, v min(SNR,γ)/(SNR+1)."""
    ab, _, _, snr = _numpy_quantities()
    m = np.minimum(snr, GAMMA)
    expected = {"x0": m, "eps": m / snr, "v": m / (snr + 1), "score": m * (1 - ab) ** 2 / ab}[target]
    got = target_weight("min_snr", target, SCHEDULE, gamma=GAMMA).numpy()
    np.testing.assert_allclose(got, _normalized(expected), rtol=1e-9)


def test_min_snr_eps_weight_is_one_where_snr_is_small():
    got = target_weight("min_snr", "eps", SCHEDULE, gamma=GAMMA).numpy()
    snr = _numpy_quantities()[3]
    low = snr <= GAMMA
    assert low.any() and (~low).any()
    np.testing.assert_allclose(got[low] / got[low][0], 1.0, rtol=1e-12)
    assert (np.diff(got[~low]) >= 0).all()  # γ/SNR grows as SNR falls towards γ


@pytest.mark.parametrize("target", TARGETS)
def test_simple_weight_is_uniform(target):
    np.testing.assert_array_equal(target_weight("simple", target, SCHEDULE).numpy(), 1.0)


def test_unknown_weighting_is_rejected():
    with pytest.raises(ValueError, match="choose one of simple, elbo, min_snr"):
        target_weight("lsnr", "eps", SCHEDULE)  # type: ignore[arg-type]


def test_huber_is_quadratic_near_zero_and_linear_far() -> None:
    zero = torch.zeros(3)
    err = torch.tensor([0.1, 1.0, 4.0])
    torch.testing.assert_close(elementwise_loss("huber", err, zero), torch.tensor([0.005, 0.5, 3.5]))
    torch.testing.assert_close(elementwise_loss("l2", err, zero), err**2)
    with pytest.raises(ValueError, match="l2"):
        elementwise_loss("l1", err, zero)  # type: ignore[arg-type]


class _Perfect(torch.nn.Module):
    """A 'network' that returns the true x0 it was told about: the loss must be ~0."""

    def __init__(self, x0: torch.Tensor) -> None:
        super().__init__()
        self.x0 = x0
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return self.x0 + 0 * self.dummy


@pytest.mark.parametrize("weighting", ["simple", "elbo", "min_snr"])
def test_objective_zero_for_perfect_prediction_positive_otherwise(weighting: str) -> None:
    s = make_schedule("cosine", 50)
    x0 = torch.randn(16, 2)
    obj = DenoisingObjective(weighting)  # type: ignore[arg-type]
    g = torch.Generator().manual_seed(0)
    assert obj(Denoiser(_Perfect(x0), s, "x0"), x0, generator=g).value.item() == pytest.approx(0.0, abs=1e-10)
    assert obj(Denoiser(_Perfect(x0 + 0.1), s, "x0"), x0, generator=g).value.item() > 1e-4
