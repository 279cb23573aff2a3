"""Forward process, posterior and reverse variances: the one-step formula agrees with the step-by-step chain, and
every coefficient matches its closed form in numpy float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from difflab.process import at, ddpm_log_variance, eps_from_x0, posterior_mean, q_chain, q_sample, x0_from_eps
from difflab.schedule import make_schedule


def test_one_step_matches_chain_moments() -> None:
    s = make_schedule("cosine", 50)
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((40_000, 1), 1.5, dtype=torch.float64)
    chain = list(q_chain(s, x0, generator=g))
    for t in (0, 10, 30, 49):
        ab = s.alphas_cumprod[t]
        one = q_sample(s, x0, torch.full((len(x0),), t), torch.randn(x0.shape, generator=g, dtype=torch.float64))
        for sample in (chain[t], one):
            assert abs(sample.mean().item() - 1.5 * ab.sqrt().item()) < 0.02
            assert abs(sample.var().item() - (1 - ab).item()) < 0.02


def test_q_sample_is_the_closed_form() -> None:
    s = make_schedule("linear", 100)
    x0, eps = torch.randn(8, 3, dtype=torch.float64), torch.randn(8, 3, dtype=torch.float64)
    t = torch.arange(8) * 12
    ab = s.alphas_cumprod[t][:, None]
    torch.testing.assert_close(q_sample(s, x0, t, eps), ab.sqrt() * x0 + (1 - ab).sqrt() * eps)


def test_last_step_is_pure_noise_for_default_schedule() -> None:
    s = make_schedule("cosine", 200)
    x0 = torch.full((20_000, 1), 3.0, dtype=torch.float64)
    xt = q_sample(s, x0, torch.full((len(x0),), 199), torch.randn(x0.shape, dtype=torch.float64))
    assert abs(xt.mean().item()) < 0.03
    assert abs(xt.std().item() - 1.0) < 0.02


def test_q_chain_applies_one_forward_step_at_a_time() -> None:
    """x_t = √α_t x_{t-1} + √β_t z_t with the chain's own draws, recomputed in numpy float64."""
    s = make_schedule("linear", 12)
    x0 = torch.randn(5, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    chain = list(q_chain(s, x0, generator=torch.Generator().manual_seed(2)))
    g = torch.Generator().manual_seed(2)
    ab = s.alphas_cumprod.numpy()
    x = x0.numpy()
    assert len(chain) == 12
    for t in range(12):
        z = torch.randn(x0.shape, generator=g, dtype=torch.float64).numpy()
        alpha = ab[t] / (ab[t - 1] if t > 0 else 1.0)
        x = np.sqrt(alpha) * x + np.sqrt(1 - alpha) * z
        np.testing.assert_allclose(chain[t].numpy(), x, rtol=1e-12, atol=1e-14)


def test_posterior_mean_and_conversions_match_the_closed_forms() -> None:
    """μ̃ (Ho et al. eq. 7), ε from x_0 and x_0 from ε (eq. 4 inverted), per sample at mixed steps."""
    s = make_schedule("cosine", 40)
    g = torch.Generator().manual_seed(3)
    x0, xt, eps = (torch.randn(6, 2, generator=g, dtype=torch.float64) for _ in range(3))
    i = torch.tensor([0, 1, 7, 20, 38, 39])
    ab = s.alphas_cumprod.numpy()[i.numpy()][:, None]
    ab_prev = np.concatenate([[1.0], s.alphas_cumprod.numpy()])[i.numpy()][:, None]
    beta = 1 - ab / ab_prev
    mean = np.sqrt(ab_prev) * beta / (1 - ab) * x0.numpy() + np.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab) * xt.numpy()
    np.testing.assert_allclose(posterior_mean(s, x0, xt, i).numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(
        eps_from_x0(s, xt, i, x0).numpy(), (xt.numpy() - np.sqrt(ab) * x0.numpy()) / np.sqrt(1 - ab), rtol=1e-12
    )
    np.testing.assert_allclose(
        x0_from_eps(s, xt, i, eps).numpy(), (xt.numpy() - np.sqrt(1 - ab) * eps.numpy()) / np.sqrt(ab), rtol=1e-10
    )


def test_at_gathers_per_sample_and_casts_to_the_data() -> None:
    values = torch.tensor([0.5, 1.5, 2.5], dtype=torch.float64)
    like = torch.zeros(4, 2, 3, 5, dtype=torch.float32)
    got = at(values, torch.tensor([2, 0, 1, 2]), like)
    assert got.shape == (4, 1, 1, 1) and got.dtype == torch.float32
    assert got.flatten().tolist() == [2.5, 0.5, 1.5, 2.5]


@pytest.mark.parametrize("variance", ["small", "large", "learned"])
def test_reverse_log_variance_per_kind(variance: str) -> None:
    """small: log β̃_t (β̃_1 at t = 0), large: log β_t, learned: v log β_t + (1 - v) log β̃_t (Nichol & Dhariwal
    2021, eq. 15)."""
    s = make_schedule("cosine", 30).respace([0, 3, 9, 17, 29])
    ab = s.alphas_cumprod.numpy()
    ab_prev = np.concatenate([[1.0], ab[:-1]])
    beta = 1 - ab / ab_prev
    var = beta * (1 - ab_prev) / (1 - ab)
    small = np.log(np.concatenate([var[1:2], var[1:]]))
    i = torch.tensor([0, 1, 2, 3, 4, 4])
    like = torch.zeros(6, 2, dtype=torch.float64)
    v = torch.linspace(0, 1, 12, dtype=torch.float64).reshape(6, 2)
    expected = {
        "small": small[i][:, None].repeat(2, 1),
        "large": np.log(beta)[i][:, None].repeat(2, 1),
        "learned": v.numpy() * np.log(beta)[i][:, None] + (1 - v.numpy()) * small[i][:, None],
    }[variance]
    got = ddpm_log_variance(s, i, like, variance, v if variance == "learned" else None)  # type: ignore[arg-type]
    assert got.shape == like.shape
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


def test_reverse_log_variance_refuses_what_it_cannot_compute() -> None:
    s = make_schedule("cosine", 10)
    i, like = torch.zeros(2, dtype=torch.int64), torch.zeros(2, 2)
    with pytest.raises(ValueError, match="needs a model trained with a learned variance"):
        ddpm_log_variance(s, i, like, "learned", None)
    with pytest.raises(ValueError, match="choose one of small, large, learned"):
        ddpm_log_variance(s, i, like, "fixed", None)  # type: ignore[arg-type]
