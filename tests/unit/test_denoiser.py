"""The denoiser adapter: time input, variance channels, clipping and classifier-free guidance, against numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from difflab.denoiser import Denoiser, Guided, Unconditional, clip_x0
from difflab.learned_schedule import LearnedScheduleModel, MonotoneLogSNR, discretize
from difflab.schedule import Schedule, make_schedule

T = 20
SCHEDULE = make_schedule("cosine", T)


class Probe(nn.Module):
    """A fixed, class-dependent "network" that records the time input it was given."""

    def __init__(self, channels: int = 2) -> None:
        super().__init__()
        self.channels = channels
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        self.seen.append(t)
        c = torch.zeros(len(x), dtype=x.dtype) if cond is None else cond.to(x.dtype)
        out = torch.tanh(0.7 * x + t[:, None].to(x.dtype)) * (1.0 + 0.5 * c[:, None]) + 0.3 * c[:, None]
        return out.repeat(1, self.channels // x.shape[1])


def batch(n: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return 2.0 * torch.randn(n, 2, generator=g, dtype=torch.float64), torch.randint(0, T, (n,), generator=g)


def numpy_x0_eps(ab: np.ndarray, x: np.ndarray, eps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (x - np.sqrt(1 - ab) * eps) / np.sqrt(ab), eps


def test_clip_kinds_match_their_definitions() -> None:
    """clip: clamp to [-1, 1]; dynamic (Saharia et al. 2022, sec. 2.3): s = max(99.5th percentile of |x̂_0|, 1)."""
    g = torch.Generator().manual_seed(1)
    x0 = (
        torch.randn(5, 400, generator=g, dtype=torch.float64)
        * torch.tensor([0.2, 0.3, 1.0, 2.0, 4.0])[:, None].double()
    )
    assert clip_x0(x0, "none") is x0
    np.testing.assert_array_equal(clip_x0(x0, "clip").numpy(), np.clip(x0.numpy(), -1, 1))
    s = np.maximum(np.quantile(np.abs(x0.numpy()), 0.995, axis=1), 1.0)[:, None]
    assert (s[:2] == 1.0).all() and (s[3:] > 1.5).all()
    np.testing.assert_allclose(clip_x0(x0, "dynamic").numpy(), np.clip(x0.numpy(), -s, s) / s, rtol=1e-6)
    image = x0.reshape(5, 4, 10, 10)  # per sample over all of its features
    np.testing.assert_allclose(
        clip_x0(image, "dynamic").reshape(5, 400).numpy(), np.clip(x0.numpy(), -s, s) / s, rtol=1e-6
    )
    half = clip_x0(x0.to(torch.bfloat16), "dynamic")  # quantile needs float32: low precision still works
    assert half.dtype == torch.bfloat16
    np.testing.assert_allclose(half.double().numpy(), np.clip(x0.numpy(), -s, s) / s, rtol=0.02, atol=0.02)
    with pytest.raises(ValueError, match="choose one of none, clip, dynamic"):
        clip_x0(x0, "static")  # type: ignore[arg-type]


def test_the_network_sees_time_in_zero_one() -> None:
    net = Probe()
    x, t = batch()
    Denoiser(net, SCHEDULE, "eps").raw(x, t)
    torch.testing.assert_close(net.seen[-1], t.float() / (T - 1))
    two = Schedule.from_alphas_cumprod(torch.tensor([0.9, 0.5], dtype=torch.float64))
    Denoiser(net, two, "eps").raw(x[:2], torch.tensor([0, 1]))
    assert net.seen[-1].tolist() == [0.0, 1.0]
    one = Schedule.from_alphas_cumprod(torch.tensor([0.5], dtype=torch.float64))
    Denoiser(net, one, "eps").raw(x[:1], torch.zeros(1, dtype=torch.int64))
    assert net.seen[-1].tolist() == [0.0]


@pytest.mark.parametrize("target", ["x0", "eps", "v"])
def test_predict_turns_the_output_into_x0_and_eps(target: str) -> None:
    x, t = batch()
    out = Probe()(x, t.double() / (T - 1))
    p = Denoiser(Probe(), SCHEDULE, target).predict(x, t, out)  # type: ignore[arg-type]
    ab = SCHEDULE.alphas_cumprod.numpy()[t.numpy()][:, None]
    a, s, y, xn = np.sqrt(ab), np.sqrt(1 - ab), out.numpy(), x.numpy()
    x0, eps = {
        "x0": (y, (xn - a * y) / s),
        "eps": numpy_x0_eps(ab, xn, y),
        "v": (a * xn - s * y, s * xn + a * y),  # v = α ε - σ x_0 (Salimans & Ho 2022)
    }[target]
    np.testing.assert_allclose(p.x0.numpy(), x0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(p.eps.numpy(), eps, rtol=1e-10, atol=1e-12)
    assert p.var_interp is None


def test_learned_variance_channels_map_to_v_in_zero_one() -> None:
    x, t = batch()
    den = Denoiser(Probe(channels=4), SCHEDULE, "eps", learned_variance=True)
    out = den.raw(x, t)
    pred, v = den.split(out)
    torch.testing.assert_close(pred, out[:, :2])
    torch.testing.assert_close(v, (out[:, 2:] + 1) / 2)
    p = den(x, t)
    torch.testing.assert_close(p.var_interp, (out[:, 2:] + 1) / 2)
    torch.testing.assert_close(p.eps, out[:, :2])


def test_the_variance_channels_are_the_second_half_for_any_channel_count() -> None:
    den = Denoiser(Probe(), SCHEDULE, "eps", learned_variance=True)
    out = torch.randn(4, 6, 3, 3, generator=torch.Generator().manual_seed(0))  # 3 data channels, 3 variance channels
    pred, v = den.split(out)
    torch.testing.assert_close(pred, out[:, :3])
    torch.testing.assert_close(v, (out[:, 3:] + 1) / 2)


def test_without_clipping_the_prediction_is_passed_through() -> None:
    """An ε-network's ε comes back as the network gave it, not re-derived from x̂_0 (which loses bits at t ≈ 0)."""
    x, t = batch(seed=6)
    den = Denoiser(Probe(), SCHEDULE, "eps")
    assert torch.equal(den(x, t).eps, den.raw(x, t))


def test_clipping_recomputes_eps_from_the_clipped_x0() -> None:
    x, t = batch(seed=2)
    plain = Denoiser(Probe(), SCHEDULE, "eps")(x, t)
    clipped = Denoiser(Probe(), SCHEDULE, "eps", clip="clip")(x, t)
    ab = SCHEDULE.alphas_cumprod.numpy()[t.numpy()][:, None]
    x0 = np.clip(plain.x0.numpy(), -1, 1)
    assert (np.abs(plain.x0.numpy()) > 1).any()
    np.testing.assert_allclose(clipped.x0.numpy(), x0)
    np.testing.assert_allclose(clipped.eps.numpy(), (x.numpy() - np.sqrt(ab) * x0) / np.sqrt(1 - ab), rtol=1e-10)


def test_refresh_schedule_rediscretizes_a_learned_gamma_only() -> None:
    torch.manual_seed(0)
    joint = LearnedScheduleModel(Probe(), MonotoneLogSNR())
    den = Denoiser(joint, joint.schedule(T), "eps")
    with torch.no_grad():
        joint.gamma.gamma_min.fill_(-7.0)
    den.refresh_schedule()
    assert len(den.schedule) == T
    torch.testing.assert_close(den.schedule.alphas_cumprod, discretize(joint.gamma, T).alphas_cumprod)
    assert float(den.schedule.alphas_cumprod[0]) == pytest.approx(torch.sigmoid(torch.tensor(7.0)).item(), rel=1e-6)
    fixed = Denoiser(Probe(), SCHEDULE, "eps")
    fixed.refresh_schedule()
    assert fixed.schedule is SCHEDULE


NULL = 3


@pytest.mark.parametrize("weight", [0.0, 1.0, 2.5, -0.5])
@pytest.mark.parametrize("clip", ["none", "clip"])
def test_guidance_combines_both_predictions_with_weight_w(weight: float, clip: str) -> None:
    """ε̃ = ε(x, ∅) + w (ε(x, c) - ε(x, ∅)), x̂_0 likewise, clipped once after combining (Ho & Salimans 2022)."""
    x, t = batch(seed=3)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    den = Denoiser(Probe(channels=4), SCHEDULE, "eps", learned_variance=True, clip=clip)  # type: ignore[arg-type]
    unclipped = Denoiser(Probe(channels=4), SCHEDULE, "eps", learned_variance=True)
    cond, null = unclipped(x, t, labels), unclipped(x, t, torch.full((6,), NULL))
    x0 = null.x0.numpy() + weight * (cond.x0.numpy() - null.x0.numpy())
    if clip == "clip":
        x0 = np.clip(x0, -1, 1)
    ab = SCHEDULE.alphas_cumprod.numpy()[t.numpy()][:, None]
    eps = (x.numpy() - np.sqrt(ab) * x0) / np.sqrt(1 - ab)
    got = Guided(den, labels, weight, null_label=NULL)(x, t)
    np.testing.assert_allclose(got.x0.numpy(), x0, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.eps.numpy(), eps, rtol=1e-9, atol=1e-9)
    expected_v = null.var_interp if weight == 0.0 else cond.var_interp
    torch.testing.assert_close(got.var_interp, expected_v)


def test_guidance_without_labels_and_unconditional_use_the_null_label_or_none() -> None:
    x, t = batch(seed=4)
    den = Denoiser(Probe(), SCHEDULE, "eps")
    null = den(x, t, torch.full((6,), NULL))
    got = Guided(den, None, 4.0, null_label=NULL)(x, t)
    torch.testing.assert_close(got.x0, null.x0)
    plain = Unconditional(den)(x, t)
    torch.testing.assert_close(plain.eps, den(x, t, None).eps)
    assert not torch.allclose(plain.eps, null.eps)


@pytest.mark.parametrize(("weight", "batches"), [(0.0, [6]), (1.0, [6]), (3.0, [12])])
def test_guidance_runs_the_network_once(weight: float, batches: list[int]) -> None:
    """w = 0 and w = 1 need one branch; any other w evaluates both in one batch of twice the size."""
    x, t = batch(seed=5)
    net = Probe()
    Guided(Denoiser(net, SCHEDULE, "eps"), torch.tensor([0, 1, 2, 0, 1, 2]), weight, null_label=NULL)(x, t)
    assert [len(seen) for seen in net.seen] == batches
