"""The variational bound: Gaussian KLs, the learned-variance loss, and bits/dim with an exact denoiser."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from difflab.denoiser import Denoiser, Prediction, Unconditional
from difflab.objectives import HYBRID_VLB_WEIGHT, DenoisingObjective
from difflab.process import posterior_mean, q_sample
from difflab.schedule import Schedule, make_schedule, spaced_timesteps
from difflab.testing import ExactNetwork
from difflab.vlb import gaussian_nll, hybrid_vlb_loss, nll_bits_per_dim, normal_kl, prior_kl, vlb_term
from tests.helpers import GAUSS


def test_gaussian_kl_and_nll_match_torch_distributions() -> None:
    g = torch.Generator().manual_seed(0)
    m1, m2, x = (torch.randn(100, generator=g, dtype=torch.float64) for _ in range(3))
    lv1, lv2 = (torch.randn(100, generator=g, dtype=torch.float64) for _ in range(2))
    p, q = torch.distributions.Normal(m1, (0.5 * lv1).exp()), torch.distributions.Normal(m2, (0.5 * lv2).exp())
    torch.testing.assert_close(normal_kl(m1, lv1, m2, lv2), torch.distributions.kl_divergence(p, q))
    torch.testing.assert_close(gaussian_nll(x, m2, lv2), -q.log_prob(x))


def test_terms_vanish_for_a_perfect_mean_and_variance() -> None:
    schedule = make_schedule("cosine", 50)
    x0 = GAUSS.sample(16, torch.Generator().manual_seed(1))
    i = torch.arange(1, 17)
    xt = q_sample(schedule, x0, i, torch.randn(16, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64))
    log_var = schedule.posterior_log_variance_clipped[i][:, None].expand_as(xt)
    torch.testing.assert_close(vlb_term(schedule, x0, xt, i, x0, log_var), torch.zeros(16, dtype=torch.float64))
    i0 = torch.zeros(16, dtype=torch.int64)
    decoder = vlb_term(schedule, x0, xt, i0, x0 + 0.1, log_var)
    expected = gaussian_nll(x0, posterior_mean(schedule, x0 + 0.1, xt, i0), log_var).sum(1)
    torch.testing.assert_close(decoder, expected)


def numpy_expected_bound(schedule: Schedule, x0: np.ndarray, variance: str) -> tuple[float, float, dict[str, float]]:
    """E[bound | x_0] in bits/dim for N(μ, Σ) data and the exact denoiser, its Monte Carlo standard error, and parts.

    With x̂_0 = μ + A(x_t - √ᾱ μ), A = √ᾱ Σ (ᾱΣ + (1-ᾱ) I)⁻¹, and x_t = √ᾱ x_0 + √(1-ᾱ) ε, the error
    x_0 - x̂_0 = b + M ε is affine in ε (b = (I - √ᾱ A)(x_0 - μ), M = -√(1-ᾱ) A). Every KL and the decoder are
    k‖c(b + Mε)‖² plus a constant, whose mean is k c²(‖b‖² + tr MᵀM) and variance (k c²)²(4 bᵀMMᵀb + 2 tr (MMᵀ)²).
    """
    mu, cov = GAUSS.mean.numpy(), GAUSS.cov.numpy()
    n, dims = x0.shape
    ab = schedule.alphas_cumprod.numpy()
    ab_prev = np.concatenate([[1.0], ab[:-1]])
    beta = 1 - ab / ab_prev
    post_var = beta * (1 - ab_prev) / (1 - ab)
    small = np.concatenate([post_var[1:2], post_var[1:]]) if len(ab) > 1 else beta
    model_var = {"small": small, "large": beta}[variance]
    coef_x0 = np.sqrt(ab_prev) * beta / (1 - ab)
    means, variances = np.zeros((len(ab), n)), np.zeros((len(ab), n))
    for i in range(len(ab)):
        a, s2 = np.sqrt(ab[i]), 1 - ab[i]
        A = a * cov @ np.linalg.inv(ab[i] * cov + s2 * np.eye(dims))
        b = (x0 - mu) @ (np.eye(dims) - a * A).T
        M = -np.sqrt(s2) * A
        MM = M @ M.T
        if i == 0:  # decoder -log N(x_0; x̂_0, σ²): the posterior mean at step 0 is x̂_0 itself (ᾱ_{-1} = 1)
            k, const = 0.5 / model_var[0], 0.5 * dims * (np.log(2 * np.pi) + np.log(model_var[0]))
        else:  # KL(N(μ̃, β̃) ‖ N(μ_θ, σ²)), μ̃ - μ_θ = coef_x0 (x_0 - x̂_0)
            ratio = small[i] / model_var[i]
            k, const = 0.5 * coef_x0[i] ** 2 / model_var[i], 0.5 * dims * (ratio - 1 - np.log(ratio))
        means[i] = const + k * ((b**2).sum(1) + np.trace(MM))
        variances[i] = k**2 * (4 * np.einsum("nd,de,ne->n", b, MM, b) + 2 * np.trace(MM @ MM))
    last = ab[-1]
    prior = 0.5 * (last * x0**2 + (1 - last) - 1 - np.log(1 - last)).sum(1)
    scale = 1 / (dims * np.log(2))
    parts = {
        "prior": prior.mean() * scale,
        "diffusion": means[1:].sum(0).mean() * scale,
        "decoder": means[0].mean() * scale,
    }
    return sum(parts.values()), np.sqrt(variances.sum()) / n * scale, parts


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def true_nll_bits(x0: torch.Tensor) -> float:
    return float(-torch.distributions.MultivariateNormal(GAUSS.mean, GAUSS.cov).log_prob(x0).mean()) / (2 * math.log(2))


def exact_denoiser(full: Schedule) -> Unconditional:
    return Unconditional(Denoiser(ExactNetwork(GAUSS, full, "eps"), full, "eps"))


@pytest.mark.parametrize(
    ("steps", "variance", "n"), [(100, "large", 4000), (10, "large", 20_000), (10, "small", 20_000)]
)
def test_bound_with_exact_denoiser_matches_its_closed_form(steps: int, variance: str, n: int) -> None:
    """Linear T = 100 on the shared Gaussian: the bound (one draw of x_t per step and point) and each of its parts
    lie within 4 Monte Carlo standard errors of their expectations, in both directions, and the expectation lies
    above the true NLL, as a bound must. Standard errors: 0.016, 0.003 and 0.005 bits/dim."""
    full = make_schedule("linear", 100)
    schedule = full.respace(spaced_timesteps(100, steps))
    x0 = GAUSS.sample(n, torch.Generator().manual_seed(0))
    got = nll_bits_per_dim(
        exact_denoiser(full), schedule, x0, variance=variance, generator=torch.Generator().manual_seed(1)
    )
    expected, se, parts = numpy_expected_bound(schedule, x0.numpy(), variance)
    assert se < 0.02
    assert abs(got.total - expected) < 4 * se, (got, expected, se)
    assert got.prior == pytest.approx(parts["prior"], rel=1e-9)
    # The parts' errors are at most the total's here: the decoder dominates the variance at 10 steps, the
    # diffusion terms at 100.
    assert abs(got.decoder - parts["decoder"]) < 4 * se and abs(got.diffusion - parts["diffusion"]) < 4 * se
    assert got.total == pytest.approx(got.prior + got.diffusion + got.decoder, rel=1e-12)
    assert expected > true_nll_bits(x0)
    if steps == 100:  # the full chain is a tight bound: 0.517 vs 0.460
        assert expected < true_nll_bits(x0) + 0.1


class WithVariance:
    """The exact denoiser plus a made-up learned-variance output v(x_t, t) ∈ (0, 1), in float32."""

    def __init__(self, full: Schedule) -> None:
        self.inner = exact_denoiser(full)

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> Prediction:
        p = self.inner(x, t)
        return Prediction(p.x0, p.eps, torch.sigmoid(x + t[:, None] / 50.0 - 1.0))


@pytest.mark.parametrize(("steps", "variance"), [(100, "large"), (100, "small"), (7, "small"), (7, "learned")])
def test_bound_is_the_estimate_the_same_draws_give_in_numpy(steps: int, variance: str) -> None:
    """The bound recomputed in numpy float64 from the same draws of ε (one per step, in step order) and the same
    network outputs: every part agrees to float64 rounding. (The outputs are those of the exact denoiser, in float32:
    they match the posterior mean written in numpy to float32 precision.)"""
    full = make_schedule("linear", 100)
    schedule = full.respace(spaced_timesteps(100, steps))
    x0 = GAUSS.sample(300, torch.Generator().manual_seed(2))
    denoiser = WithVariance(full) if variance == "learned" else exact_denoiser(full)
    got = nll_bits_per_dim(denoiser, schedule, x0, variance=variance, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    mu, cov, x = GAUSS.mean.numpy(), GAUSS.cov.numpy(), x0.numpy()
    ab = schedule.alphas_cumprod.numpy()
    ab_prev = np.concatenate([[1.0], ab[:-1]])
    beta = 1 - ab / ab_prev
    var = beta * (1 - ab_prev) / (1 - ab)
    small, large = np.log(np.concatenate([var[1:2], var[1:]])), np.log(beta)
    terms = []
    for i in range(len(ab)):
        eps = torch.randn(x0.shape, generator=g, dtype=torch.float64).numpy()
        a, s2 = np.sqrt(ab[i]), 1 - ab[i]
        xt = a * x + np.sqrt(s2) * eps
        pred = denoiser(torch.as_tensor(xt).float(), schedule.timesteps[i].expand(len(x)))
        x0_hat = pred.x0.double().numpy()
        posterior_mean = mu + (xt - a * mu) @ (a * cov @ np.linalg.inv(ab[i] * cov + s2 * np.eye(2))).T
        np.testing.assert_allclose(x0_hat, posterior_mean, rtol=1e-4, atol=1e-4)
        v = pred.var_interp.double().numpy() if pred.var_interp is not None else {"small": 0.0, "large": 1.0}[variance]
        log_var = v * large[i] + (1 - v) * small[i]
        idx = np.full(len(x), i)
        terms.append(numpy_vlb_term(schedule, x, xt, idx, x0_hat, np.broadcast_to(log_var, x.shape)))
    bits = 1 / (2 * np.log(2))
    prior = 0.5 * (ab[-1] * x**2 + (1 - ab[-1]) - 1 - np.log(1 - ab[-1])).sum(1).mean() * bits
    diffusion = np.sum(terms[1:], axis=0).mean() * bits
    decoder = terms[0].mean() * bits
    assert got.prior == pytest.approx(prior, rel=1e-10)
    assert got.diffusion == pytest.approx(diffusion, rel=1e-10)
    assert got.decoder == pytest.approx(decoder, rel=1e-10)
    assert got.total == pytest.approx(prior + diffusion + decoder, rel=1e-10)


def test_bound_is_computed_in_float64_whatever_the_input() -> None:
    """float32 data give the float64 result (the draws are made in float64), and a single point works."""
    full = make_schedule("linear", 100)
    schedule = full.respace(spaced_timesteps(100, 9))
    x0 = GAUSS.sample(50, torch.Generator().manual_seed(4)).float()
    runs = [
        nll_bits_per_dim(exact_denoiser(full), schedule, x, generator=torch.Generator().manual_seed(5))
        for x in (x0, x0.double())
    ]
    assert runs[0] == runs[1]
    one = nll_bits_per_dim(exact_denoiser(full), schedule, x0[:1], generator=torch.Generator().manual_seed(5))
    assert math.isfinite(one.total)


def test_prior_kl_is_the_closed_form_for_data_away_from_zero() -> None:
    """KL(N(√ᾱ x_0, 1-ᾱ) ‖ N(0, 1)) per dimension is ½(ᾱ x_0² + (1-ᾱ) - 1 - log(1-ᾱ)), summed per sample."""
    schedule = make_schedule("series", 20)  # ends at ᾱ ≈ 0.82: the signal term matters
    x0 = torch.tensor([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5], [3.0, 0.1, -1.0]], dtype=torch.float64)
    ab = float(schedule.alphas_cumprod[-1])
    expected = 0.5 * (ab * x0.numpy() ** 2 + (1 - ab) - 1 - math.log(1 - ab)).sum(1)
    np.testing.assert_allclose(prior_kl(schedule, x0).numpy(), expected, rtol=1e-12)
    image = x0.reshape(3, 3, 1, 1)
    np.testing.assert_allclose(prior_kl(schedule, image).numpy(), expected, rtol=1e-12)


def numpy_vlb_term(
    schedule: Schedule, x0: np.ndarray, xt: np.ndarray, i: np.ndarray, x0_pred: np.ndarray, log_var: np.ndarray
) -> np.ndarray:
    """L_{t-1} per sample written out: KL(q(x_{t-1}|x_t,x_0) ‖ N(μ̃(x_t, x̂_0), e^{lv})) for t ≥ 1, -log N(x_0; μ̃, e^{lv})
    at t = 0 (Ho et al. 2020, eqs. 5-7)."""
    ab = schedule.alphas_cumprod.numpy()
    ab_prev = np.concatenate([[1.0], ab[:-1]])
    beta = 1 - ab / ab_prev
    var = beta * (1 - ab_prev) / (1 - ab)
    var = np.concatenate([var[1:2], var[1:]])[i][:, None]
    c0 = (np.sqrt(ab_prev) * beta / (1 - ab))[i][:, None]
    ct = (np.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab))[i][:, None]
    true_mean, model_mean = c0 * x0 + ct * xt, c0 * x0_pred + ct * xt
    kl = 0.5 * (log_var - np.log(var) + var / np.exp(log_var) + (true_mean - model_mean) ** 2 / np.exp(log_var) - 1)
    nll = 0.5 * (np.log(2 * np.pi) + log_var + (x0 - model_mean) ** 2 / np.exp(log_var))
    return np.where(i == 0, nll.sum(1), kl.sum(1))


def test_vlb_term_is_the_kl_and_the_decoder_nll() -> None:
    schedule = make_schedule("cosine", 40).respace([0, 2, 9, 20, 39])
    g = torch.Generator().manual_seed(5)
    x0, xt, x0_pred = (torch.randn(10, 3, generator=g, dtype=torch.float64) for _ in range(3))
    log_var = torch.randn(10, 3, generator=g, dtype=torch.float64) - 3.0
    i = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2, 3, 4])
    got = vlb_term(schedule, x0, xt, i, x0_pred, log_var)
    expected = numpy_vlb_term(schedule, x0.numpy(), xt.numpy(), i.numpy(), x0_pred.numpy(), log_var.numpy())
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10)


class Affine(nn.Module):
    """A tiny network with separate mean and variance outputs."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 4)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.lin(torch.cat([x, t[:, None]], dim=1))


def test_vlb_loss_trains_only_the_variance_channels() -> None:
    schedule = make_schedule("cosine", 100)
    denoiser = Denoiser(Affine(), schedule, "eps", learned_variance=True)
    x0 = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    t = torch.randint(0, 100, (64,), generator=torch.Generator().manual_seed(1))
    xt = q_sample(schedule, x0, t, torch.randn(64, 2, generator=torch.Generator().manual_seed(2)))
    out = denoiser.raw(xt, t).detach().requires_grad_(True)
    hybrid_vlb_loss(denoiser, x0, xt, t, out).mean().backward()
    assert out.grad is not None
    assert float(out.grad[:, :2].abs().max()) == 0.0
    assert float(out.grad[:, 2:].abs().max()) > 0.0


@pytest.mark.parametrize("target", ["eps", "v"])
def test_hybrid_vlb_loss_is_T_times_the_term_per_dimension(target: str) -> None:
    """L_vlb = T · L_{t-1} / D at the sampled t (Nichol & Dhariwal 2021, sec. 3.1: the sum over t estimated by one
    uniform draw), with x̂_0 from the prediction and log σ² = v log β_t + (1-v) log β̃_t, v = (out + 1)/2."""
    T = 100
    schedule = make_schedule("cosine", T)
    torch.manual_seed(0)
    denoiser = Denoiser(Affine(), schedule, target, learned_variance=True)  # type: ignore[arg-type]
    g = torch.Generator().manual_seed(4)
    x0 = torch.randn(64, 2, generator=g)
    t = torch.cat([torch.tensor([0, 1, T - 1]), torch.randint(0, T, (61,), generator=g)])
    xt = q_sample(schedule, x0, t, torch.randn(64, 2, generator=g))
    out = denoiser.raw(xt, t).detach()
    got = hybrid_vlb_loss(denoiser, x0, xt, t, out)
    ab = schedule.alphas_cumprod.numpy()
    ab_prev = np.concatenate([[1.0], ab[:-1]])
    beta = 1 - ab / ab_prev
    var = beta * (1 - ab_prev) / (1 - ab)
    small = np.log(np.concatenate([var[1:2], var[1:]]))
    a, s = np.sqrt(ab)[t][:, None], np.sqrt(1 - ab)[t][:, None]
    y, z, v = out[:, :2].double().numpy(), xt.double().numpy(), (out[:, 2:].double().numpy() + 1) / 2
    x0_hat = (z - s * y) / a if target == "eps" else a * z - s * y
    log_var = v * np.log(beta)[t][:, None] + (1 - v) * small[t][:, None]
    expected = T * numpy_vlb_term(schedule, x0.double().numpy(), z, t.numpy(), x0_hat, log_var) / 2
    np.testing.assert_allclose(got.double().numpy(), expected, rtol=2e-4)
    one = hybrid_vlb_loss(denoiser, x0[:1], xt[:1], t[:1], out[:1])  # a batch of one is no special case
    torch.testing.assert_close(one, got[:1])


def test_hybrid_objective_adds_the_weighted_vlb_and_needs_a_learned_variance() -> None:
    schedule = make_schedule("cosine", 100)
    x0 = torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    denoiser = Denoiser(Affine(), schedule, "eps", learned_variance=True)
    simple = DenoisingObjective()(denoiser, x0, generator=torch.Generator().manual_seed(3)).value.detach()
    objective = DenoisingObjective(vlb_weight=HYBRID_VLB_WEIGHT)
    hybrid = objective(denoiser, x0, generator=torch.Generator().manual_seed(3)).value.detach()
    assert hybrid.item() > simple.item() > 0
    fixed = Denoiser(nn.Linear(3, 2), schedule, "eps")
    with pytest.raises(ValueError, match="learned_variance"):
        hybrid_vlb_loss(fixed, x0, x0, torch.zeros(64, dtype=torch.int64), x0)
