"""Loss weightings against independent closed forms, and the objective's behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from difflab.denoiser import Denoiser
from difflab.objectives import Objective, elbo_x0_weight, elementwise_loss, target_weight
from difflab.schedule import make_schedule


def test_elbo_weight_is_the_kl_between_posteriors() -> None:
    """½(SNR_{t-1} - SNR_t) equals the KL per unit ‖x0 error‖²: coef_x0² / (2 β̃_t) (Ho et al. eq. 7-8)."""
    s = make_schedule("cosine", 100)
    ab = s.alphas_cumprod.numpy()
    ab_prev = np.concatenate([[1.0], ab[:-1]])
    beta = 1 - ab / ab_prev
    post_var = beta * (1 - ab_prev) / (1 - ab)
    coef = np.sqrt(ab_prev) * beta / (1 - ab)
    kl = coef[1:] ** 2 / (2 * post_var[1:])
    w = elbo_x0_weight(s).numpy()
    np.testing.assert_allclose(w[1:], kl, rtol=1e-8)
    assert w[0] == pytest.approx(0.5 / beta[0])


def test_weights_have_mean_one_and_right_shape() -> None:
    s = make_schedule("cosine", 100)
    for weighting in ("simple", "elbo", "min_snr"):
        w = target_weight(weighting, "x0", s)
        assert w.shape == (100,)
        assert w.mean().item() == pytest.approx(1.0)
    snr = s.snr.numpy()
    w = target_weight("min_snr", "x0", s, gamma=5.0).numpy()
    np.testing.assert_allclose(w, np.minimum(snr, 5.0) / np.minimum(snr, 5.0).mean(), rtol=1e-10)


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
    obj = Objective(weighting)  # type: ignore[arg-type]
    g = torch.Generator().manual_seed(0)
    assert obj(Denoiser(_Perfect(x0), s, "x0"), x0, generator=g).item() == pytest.approx(0.0, abs=1e-10)
    assert obj(Denoiser(_Perfect(x0 + 0.1), s, "x0"), x0, generator=g).item() > 1e-4
