"""Forward process: the one-step formula agrees with the step-by-step chain."""

from __future__ import annotations

import torch

from difflab.process import q_chain, q_sample
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
