"""Training objectives: timestep weightings per target against closed forms computed independently in numpy
float64, the element losses, and the objective's behaviour."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from difflab.denoiser import Denoiser
from difflab.learned_schedule import LearnedScheduleModel, vdm_gradients, vdm_terms
from difflab.objectives import (
    DenoisingObjective,
    VDMObjective,
    build_objective,
    elbo_x0_weight,
    elementwise_loss,
    target_weight,
)
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
    """λ_t = ½(SNR_{t-1} - SNR_t) on ‖x_0 - x̂_0‖², times c_t: 1, 1/SNR, 1-ᾱ, (1-ᾱ)²/ᾱ, (1-ᾱ)/(√ᾱ + √(1-ᾱ))²."""
    ab, _, beta, snr = _numpy_quantities()
    lam = np.empty_like(ab)
    lam[1:] = 0.5 * (snr[:-1] - snr[1:])
    lam[0] = 0.5 / beta[0]
    flow = (1 - ab) / (np.sqrt(ab) + np.sqrt(1 - ab)) ** 2  # x̂0 = (σ x_t - σ² û)/(α + σ)... so p = -σ/(α + σ)
    factor = {"x0": 1.0, "eps": 1 / snr, "v": 1 - ab, "score": (1 - ab) ** 2 / ab, "flow": flow}[target]
    np.testing.assert_allclose(target_weight("elbo", target, SCHEDULE).numpy(), _normalized(lam * factor), rtol=1e-9)


@pytest.mark.parametrize("target", TARGETS)
def test_min_snr_weight_per_target(target):
    """Hang et al. 2023, eq. 7 and sec. 3.4: x0 min(SNR,γ), ε min(SNR,γ)/SNR, v min(SNR,γ)/(SNR+1)."""
    ab, _, _, snr = _numpy_quantities()
    m = np.minimum(snr, GAMMA)
    flow = m * (1 - ab) / (np.sqrt(ab) + np.sqrt(1 - ab)) ** 2
    expected = {"x0": m, "eps": m / snr, "v": m / (snr + 1), "score": m * (1 - ab) ** 2 / ab, "flow": flow}[target]
    got = target_weight("min_snr", target, SCHEDULE).numpy()  # γ = 5 by default, as Hang et al. recommend
    np.testing.assert_allclose(got, _normalized(expected), rtol=1e-9)
    other = {"x0": np.minimum(snr, 2.0), "eps": np.minimum(snr, 2.0) / snr}.get(target)
    if other is not None:
        got = target_weight("min_snr", target, SCHEDULE, gamma=2.0).numpy()
        np.testing.assert_allclose(got, _normalized(other), rtol=1e-9)


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


class _Affine(torch.nn.Module):
    """A fixed small network of (x, t) with `out` channels."""

    def __init__(self, out: int = 2) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(3, out)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.lin(torch.cat([x, t[:, None]], dim=1))


def _numpy_weights(weighting: str, target: str) -> np.ndarray:
    """The per-timestep weight on the target's squared error, from the closed forms above (mean 1)."""
    ab, _, beta, snr = _numpy_quantities()
    flow = (1 - ab) / (np.sqrt(ab) + np.sqrt(1 - ab)) ** 2  # x̂0 = (σ x_t - σ² û)/(α + σ)... so p = -σ/(α + σ)
    factor = {"x0": 1.0, "eps": 1 / snr, "v": 1 - ab, "score": (1 - ab) ** 2 / ab, "flow": flow}[target]
    lam = np.empty_like(ab)
    lam[1:] = 0.5 * (snr[:-1] - snr[1:])
    lam[0] = 0.5 / beta[0]
    w = {"simple": np.ones_like(ab), "elbo": lam * factor, "min_snr": np.minimum(snr, GAMMA) * factor}[weighting]
    return _normalized(w)


@pytest.mark.parametrize(
    ("weighting", "target", "loss", "built"),
    [
        ("simple", "eps", "l2", False),
        ("elbo", "v", "l2", True),
        ("min_snr", "x0", "huber", False),
        ("min_snr", "eps", "l2", True),
        ("elbo", "score", "huber", False),
    ],
)
def test_denoising_objective_value_from_the_same_draws(weighting: str, target: str, loss: str, built: bool) -> None:
    """t ~ U{0..T-1}, then ε ~ N(0, I) from the generator, x_t = √ᾱ x_0 + √(1-ᾱ) ε; the loss is the batch mean of
    the feature mean of w_t ℓ(ŷ - y), recomputed in numpy from the same draws (min-SNR at its default γ = 5)."""
    T = len(SCHEDULE)
    net = _Affine()
    x0 = torch.randn(256, 2, generator=torch.Generator().manual_seed(1))
    if built:
        objective = build_objective(net, target, weighting=weighting, loss=loss)  # type: ignore[arg-type]
    else:
        objective = DenoisingObjective(weighting, loss)  # type: ignore[arg-type,assignment]
    value = objective(Denoiser(net, SCHEDULE, target), x0, generator=torch.Generator().manual_seed(2)).value  # type: ignore[arg-type]
    g = torch.Generator().manual_seed(2)
    t = torch.randint(0, T, (256,), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    ab = SCHEDULE.alphas_cumprod.numpy()[t][:, None]
    a, s = np.sqrt(ab), np.sqrt(1 - ab)
    xt = a * x0.double().numpy() + s * eps.double().numpy()
    with torch.no_grad():
        pred = net(torch.as_tensor(xt, dtype=torch.float32), t.float() / (T - 1)).double().numpy()
    x, e = x0.double().numpy(), eps.double().numpy()
    goal = {"x0": x, "eps": e, "v": a * e - s * x, "score": -e / s}[target]
    err = np.abs(pred - goal)
    per_elem = err**2 if loss == "l2" else np.where(err < 1, 0.5 * err**2, err - 0.5)
    expected = (per_elem * _numpy_weights(weighting, target)[t][:, None]).mean()
    assert value.item() == pytest.approx(expected, rel=1e-4)


def test_hybrid_objective_adds_one_thousandth_of_the_vlb() -> None:
    """L_hybrid = L_simple + λ L_vlb with λ = 0.001 (Nichol & Dhariwal 2021, sec. 3.1) for a learned variance."""
    from difflab.process import q_sample
    from difflab.vlb import hybrid_vlb_loss

    objective = build_objective(_Affine(4), "eps", learned_variance=True)
    assert isinstance(objective, DenoisingObjective)
    den = Denoiser(_Affine(4), SCHEDULE, "eps", learned_variance=True)
    x0 = torch.randn(128, 2, generator=torch.Generator().manual_seed(1))
    value = objective(den, x0, generator=torch.Generator().manual_seed(2)).value
    g = torch.Generator().manual_seed(2)
    t = torch.randint(0, len(SCHEDULE), (128,), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    xt = q_sample(SCHEDULE, x0, t, eps)
    out = den.raw(xt, t)
    simple = ((out[:, :2] - eps) ** 2).mean()
    vlb = hybrid_vlb_loss(den, x0, xt, t, out).mean()
    assert vlb.item() > 10 * simple.item()  # the λ term is visible in the sum
    assert value.item() == pytest.approx(simple.item() + 0.001 * vlb.item(), rel=1e-5)


def test_build_objective_passes_the_options_through() -> None:
    plain = build_objective(_Affine(), "v", weighting="min_snr", loss="huber", min_snr_gamma=3.0)
    assert plain == DenoisingObjective("min_snr", "huber", 3.0, 0.0)
    model = _Affine()
    assert plain.clip_groups(model) == [list(model.parameters())]
    joint = LearnedScheduleModel(_Affine())
    vdm = build_objective(joint, "eps")
    assert isinstance(vdm, VDMObjective) and vdm.model is joint and vdm.target == "eps"


def test_vdm_objective_is_the_mean_bound_per_dimension_and_accumulates_gradients() -> None:
    joint = LearnedScheduleModel(_Affine())
    objective = VDMObjective(joint, "eps")
    x0 = torch.randn(32, 2, generator=torch.Generator().manual_seed(3))
    loss = objective(Denoiser(joint, joint.schedule(10), "eps"), x0, generator=torch.Generator().manual_seed(4))
    terms = vdm_terms(joint.net, joint.gamma, "eps", x0, generator=torch.Generator().manual_seed(4))
    assert loss.value.item() == pytest.approx(terms.total.mean().item() / 2, rel=1e-6)
    params = list(joint.parameters())
    grads = vdm_gradients(terms, terms.total.mean() / 2, params, joint.gamma)
    for p in params:
        p.grad = torch.ones_like(p)
    loss.backward()
    for p, grad in zip(params, grads, strict=True):
        torch.testing.assert_close(p.grad, 1 + grad, rtol=1e-5, atol=1e-6)
    shape = joint.gamma.shape_parameters()
    groups = objective.clip_groups(joint)
    assert [id(p) for p in groups[1]] == [id(p) for p in shape]
    assert {id(p) for p in groups[0]} == {id(p) for p in params} - {id(p) for p in shape}


def test_vdm_objective_divides_by_one_sample_s_dimensions_also_for_a_batch_of_one() -> None:
    """Per dimension means per item's dimensions (x0[0].numel()), which a batch of one must still have."""
    joint = LearnedScheduleModel(_Affine())
    x0 = torch.randn(1, 2, generator=torch.Generator().manual_seed(5))
    loss = VDMObjective(joint, "eps")(
        Denoiser(joint, joint.schedule(10), "eps"), x0, generator=torch.Generator().manual_seed(6)
    )
    terms = vdm_terms(joint.net, joint.gamma, "eps", x0, generator=torch.Generator().manual_seed(6))
    assert loss.value.item() == pytest.approx(terms.total.item() / 2, rel=1e-6)
