"""Respacing: any subset of trained steps is a new valid process that starts at the last trained step."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from difflab.denoiser import Prediction
from difflab.process import x0_from_eps
from difflab.samplers import SAMPLERS, sample_ddim, sample_ddpm
from difflab.schedule import _strictly_increasing, make_schedule, spaced_timesteps


@pytest.mark.parametrize(("train", "steps"), [(200, 1), (200, 3), (200, 7), (200, 50), (200, 200), (1000, 13)])
def test_trailing_matches_diffusers_definition_and_starts_at_last_step(train: int, steps: int) -> None:
    ts = spaced_timesteps(train, steps, "trailing")
    reference = np.round(np.arange(train, 0, -train / steps)).astype(np.int64) - 1  # diffusers' "trailing"
    assert ts.tolist() == sorted(reference.tolist())
    assert int(ts[-1]) == train - 1


@pytest.mark.parametrize("spacing", ["trailing", "linspace", "quadratic"])
def test_every_spacing_starts_at_last_step_and_covers_the_extremes(spacing: str) -> None:
    for steps in range(1, 41):
        ts = spaced_timesteps(40, steps, spacing)  # type: ignore[arg-type]
        assert len(ts) == steps and int(ts[-1]) == 39
        assert bool((ts[1:] > ts[:-1]).all())
    assert spaced_timesteps(40, 1, spacing).tolist() == [39]  # type: ignore[arg-type]
    assert spaced_timesteps(40, 40, spacing).tolist() == list(range(40))  # type: ignore[arg-type]
    assert spaced_timesteps(40, 5, "linspace").tolist() == [0, 10, 20, 29, 39]


def test_quadratic_spacing_follows_ddim_and_stays_distinct_at_every_count() -> None:
    """round((T-1)(i/(K-1))²) where that is already distinct; consecutive steps near 0 where rounding repeats."""
    assert spaced_timesteps(1000, 5, "quadratic").tolist() == [0, 62, 250, 562, 999]
    expected = np.round(999 * np.linspace(0, 1, 20) ** 2).astype(int).tolist()
    assert spaced_timesteps(1000, 20, "quadratic").tolist() == expected
    for steps in range(2, 1001):
        ts = spaced_timesteps(1000, steps, "quadratic")
        assert len(ts) == steps and int(ts[0]) == 0 and int(ts[-1]) == 999
        assert bool((ts[1:] > ts[:-1]).all()), steps
    assert spaced_timesteps(1000, 100, "quadratic")[:4].tolist() == [0, 1, 2, 3]  # 999/99² ≈ 0.1 would repeat 0


def test_strictly_increasing_pushes_repeats_up_then_pulls_the_top_back() -> None:
    """The helper's contract on grids the spacings never produce (there the first pass already ends at `last`)."""
    assert _strictly_increasing(torch.tensor([0.0, 0.0, 5.0, 5.0, 5.0]), 5).tolist() == [0, 1, 3, 4, 5]
    assert _strictly_increasing(torch.tensor([0.0, 0.0, 0.0, 2.0, 9.0, 9.0]), 9).tolist() == [0, 1, 2, 3, 8, 9]
    assert _strictly_increasing(torch.tensor([0.0, 3.0, 3.0, 4.0, 4.0]), 5).tolist() == [0, 2, 3, 4, 5]


def test_bad_spacing_requests_are_refused() -> None:
    for steps in (0, 41):
        with pytest.raises(ValueError, match="between 1 and 40"):
            spaced_timesteps(40, steps)
    for spacing in ("trailing", "linspace", "quadratic"):
        assert spaced_timesteps(40, 7, spacing).dtype == torch.int64  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="trailing, linspace or quadratic"):
        spaced_timesteps(40, 4, "leading")  # type: ignore[arg-type]


def test_respaced_process_is_built_from_kept_alpha_bars() -> None:
    full = make_schedule("cosine", 100)
    keep = [0, 3, 17, 18, 60, 99]
    sub = full.respace(keep)
    ab = full.alphas_cumprod[keep]
    torch.testing.assert_close(sub.alphas_cumprod, ab)
    torch.testing.assert_close(sub.betas, 1 - ab / torch.cat([torch.ones(1, dtype=torch.float64), ab[:-1]]))
    assert bool((sub.posterior_variance <= sub.betas).all())
    assert sub.timesteps.tolist() == keep and sub.num_train_timesteps == 100
    twice = sub.respace([17, 99])  # a subset of a subset
    torch.testing.assert_close(twice.alphas_cumprod, full.alphas_cumprod[[17, 99]])
    same = full.respace(range(100))  # type: ignore[arg-type]
    torch.testing.assert_close(same.betas, full.betas)
    torch.testing.assert_close(same.posterior_variance, full.posterior_variance)


INVALID = [
    ([0, 5, 98], "end at the last trained step 99"),
    ([5, 3, 99], "increasing"),
    ([3, 3, 99], "increasing"),
    ([0, 50, 20, 99], "increasing"),
    ([4, 99, 100], "subset"),
    ([], "at least one timestep"),
]


@pytest.mark.parametrize(("keep", "message"), INVALID)
def test_invalid_respacing_is_refused(keep: list[int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_schedule("cosine", 100).respace(keep)


def test_previous_step_is_read_from_the_timestep_array() -> None:
    """An irregular explicit subset: each DDIM step must land on the ᾱ of the previous kept step."""
    full = make_schedule("linear", 100)
    keep = [0, 3, 17, 18, 60, 99]
    sub = full.respace(keep)
    eps = torch.full((4, 2), 0.3, dtype=torch.float64)

    def constant(x: torch.Tensor, t: torch.Tensor) -> Prediction:
        return Prediction(x0_from_eps(full, x, t, eps), eps)

    seen: list[dict[str, object]] = []
    x = torch.ones(4, 2, dtype=torch.float64)
    sample_ddim(constant, x, sub, callback=seen.append)
    assert [d["t"] for d in seen] == keep[::-1]
    ab = full.alphas_cumprod
    for step, nxt in itertools.pairwise(seen):
        t, t_prev = int(step["t"]), int(nxt["t"])  # type: ignore[call-overload]
        x0 = (step["x"] - (1 - ab[t]).sqrt() * eps) / ab[t].sqrt()  # type: ignore[operator]
        torch.testing.assert_close(nxt["x"], ab[t_prev].sqrt() * x0 + (1 - ab[t_prev]).sqrt() * eps)


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_one_step_chain_returns_the_prediction_at_the_last_trained_step(sampler: str) -> None:
    full = make_schedule("cosine", 50)
    sub = full.respace(spaced_timesteps(50, 1))
    seen: list[int] = []

    def fn(x: torch.Tensor, t: torch.Tensor) -> Prediction:
        seen.append(int(t[0]))
        return Prediction(torch.tanh(x), torch.zeros_like(x))

    x = torch.randn(8, 2, generator=torch.Generator().manual_seed(0))
    out = SAMPLERS[sampler](fn, x, sub, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, torch.tanh(x))
    assert seen == [49]


@pytest.mark.parametrize("variance", ["small", "large", "learned"])
def test_ddpm_step_variance_is_that_of_the_respaced_process(variance: str) -> None:
    """With x̂_0 chosen so the posterior mean is 0, each step yields pure noise of std σ_i of the respaced process."""
    full = make_schedule("cosine", 100)
    sub = full.respace(spaced_timesteps(100, 10))
    v = torch.full((20_000, 2), 0.25, dtype=torch.float64)
    position = {int(t): i for i, t in enumerate(sub.timesteps)}

    def fn(x: torch.Tensor, t: torch.Tensor) -> Prediction:
        i = position[int(t[0])]
        x0 = -sub.posterior_mean_coef_xt[i] / sub.posterior_mean_coef_x0[i] * x
        return Prediction(x0, x, v)

    seen: list[torch.Tensor] = []
    x = torch.randn(20_000, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    sample_ddpm(fn, x, sub, variance=variance, generator=generator, callback=lambda d: seen.append(d["x"]))  # type: ignore[arg-type]
    small, large = sub.posterior_variance, sub.betas
    expected = {"small": small, "large": large, "learned": small**0.75 * large**0.25}[variance]
    assert large[1] > 2 * small[1]  # the three kinds differ
    stds = torch.tensor([float(seen[10 - i].std()) for i in range(1, 10)], dtype=torch.float64)
    torch.testing.assert_close(stds, expected[1:].sqrt(), rtol=0.02, atol=0.0)
