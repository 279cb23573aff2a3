"""The variational bound: Gaussian KLs, the learned-variance loss, and bits/dim with an exact denoiser."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from difflab.denoiser import Denoiser, Unconditional
from difflab.objectives import HYBRID_VLB_WEIGHT, DenoisingObjective
from difflab.process import posterior_mean, q_sample
from difflab.schedule import make_schedule, spaced_timesteps
from difflab.testing import ExactNetwork
from difflab.vlb import gaussian_nll, hybrid_vlb_loss, nll_bits_per_dim, normal_kl, vlb_term
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


def test_bound_with_exact_denoiser_is_close_above_the_true_nll() -> None:
    """Linear T = 100, 2000 points, true 0.460 bits/dim: over 4 noise seeds the full-chain bound ("large")
    measured 0.45-0.53 and the 10-step bound 0.87-0.95."""
    full = make_schedule("linear", 100)
    x0 = GAUSS.sample(2000, torch.Generator().manual_seed(0))
    true_bpd = float(-torch.distributions.MultivariateNormal(GAUSS.mean, GAUSS.cov).log_prob(x0).mean()) / (
        2 * math.log(2)
    )
    denoiser = Unconditional(Denoiser(ExactNetwork(GAUSS, full, "eps"), full, "eps"))
    bounds = {}
    for steps in (10, 100):
        schedule = full.respace(spaced_timesteps(100, steps))
        g = torch.Generator().manual_seed(1)
        bounds[steps] = nll_bits_per_dim(denoiser, schedule, x0, variance="large", generator=g)
    full_bound = bounds[100]
    assert math.isclose(full_bound.total, full_bound.prior + full_bound.diffusion + full_bound.decoder)
    assert true_bpd - 0.05 < full_bound.total < true_bpd + 0.1
    assert bounds[10].total > full_bound.total + 0.2  # the 10-step process is a much looser bound


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
