"""The learned log-SNR schedule (VDM): monotone by construction, trains without NaNs, usable by every sampler."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from difflab.api import load
from difflab.cli import main
from difflab.denoiser import Denoiser, Unconditional
from difflab.learned_schedule import (
    LearnedScheduleModel,
    MonotoneLogSNR,
    PositiveLinear,
    VDMTerms,
    discretize,
    eps_from_output,
    vdm_gradients,
    vdm_terms,
)
from difflab.models.mlp import MLP
from difflab.objectives import VDMObjective
from difflab.process import TARGETS, target_from
from difflab.samplers import SAMPLERS
from difflab.schedule import make_schedule, spaced_timesteps
from tests.helpers import GAUSS, TINY, assert_identical, cli_args, crash_at_step_7, final_state, tiny_trainer


def assert_monotone(gamma: MonotoneLogSNR) -> None:
    t = torch.linspace(0, 1, 1001)
    with torch.no_grad():
        g = gamma(t)
    assert bool(torch.isfinite(g).all())
    assert bool((g[1:] > g[:-1]).all()), "γ = -log SNR must increase with t"


@pytest.mark.parametrize("seed", range(5))
def test_random_networks_are_monotone_with_the_requested_endpoints(seed: int) -> None:
    torch.manual_seed(seed)
    gamma = MonotoneLogSNR(-8.0, 6.0)
    assert_monotone(gamma)
    with torch.no_grad():
        ends = gamma(torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(ends, torch.tensor([-8.0, 6.0]))


@pytest.mark.parametrize("target", TARGETS)
def test_eps_from_output_inverts_every_target(target: str) -> None:
    schedule = discretize(MonotoneLogSNR(), 10)
    x0, eps = GAUSS.sample(8, torch.Generator().manual_seed(0)), torch.randn(8, 2, dtype=torch.float64)
    i = torch.arange(1, 9)
    ab = schedule.alphas_cumprod[i][:, None]
    z = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    out = target_from(target, schedule, z, i, x0, eps)  # type: ignore[arg-type]
    torch.testing.assert_close(eps_from_output(target, z, ab.sqrt(), (1 - ab).sqrt(), out), eps)  # type: ignore[arg-type]


def test_joint_training_is_finite_keeps_snr_monotone_and_lowers_the_bound() -> None:
    torch.manual_seed(0)
    joint = LearnedScheduleModel(MLP(2, hidden=64, depth=2))
    model, gamma = joint.net, joint.gamma
    objective = VDMObjective(joint, "eps")
    optimizer = torch.optim.Adam(joint.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    data = GAUSS.sample(20_000, g).float()
    losses = []
    for _ in range(150):
        batch = data[torch.randint(0, len(data), (128,), generator=g)]
        optimizer.zero_grad(set_to_none=True)
        loss = objective(Denoiser(joint, joint.schedule(10), "eps"), batch, generator=g)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.value.detach()))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-30:]) < sum(losses[:30])
    assert_monotone(gamma)
    with torch.no_grad():
        shape_moved = gamma(torch.tensor([0.5])) != MonotoneLogSNR()(torch.tensor([0.5]))
    assert bool(shape_moved)
    schedule = discretize(gamma, 100)  # a valid Schedule: strictly decreasing ᾱ in (0, 1]
    denoiser = Unconditional(Denoiser(model, schedule, "eps").eval())
    x_T = torch.randn(2000, 2, generator=g)
    for name, sampler in SAMPLERS.items():
        out = sampler(denoiser, x_T, schedule.respace(spaced_timesteps(100, 20)), generator=g)
        assert bool(torch.isfinite(out).all()), name
        # 150 steps train the network only roughly (measured mean errors 0.1-0.25): the data's scale, not N(0, I)
        assert float((out.mean(0).double() - GAUSS.mean).norm()) < 0.4, name
        assert 0.1 < float(out.std(0).max()) < 1.0, name


def softplus(w: np.ndarray) -> np.ndarray:
    return np.log1p(np.exp(w))


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def numpy_gamma(gamma: MonotoneLogSNR, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """γ(t) and γ'(t) from the weights: h = w₁t + b₁, r(t) = h + W₃ sigmoid(W₂h + b₂) with softplus'd weights (VDM's
    monotone net), γ = γ₀ + (γ₁ - γ₀)(r(t) - r(0))/(r(1) - r(0)), γ₁ = γ₀ + softplus(gap)."""
    p = {k: v.detach().double().numpy() for k, v in gamma.named_parameters()}
    w1, b1 = softplus(p["l1.weight"])[0, 0], p["l1.bias"][0]
    w2, b2, w3 = softplus(p["l2.weight"])[:, 0], p["l2.bias"], softplus(p["l3.weight"])[0]

    def r(u: np.ndarray) -> np.ndarray:
        h = w1 * u + b1
        return h + sigmoid(np.multiply.outer(h, w2) + b2) @ w3

    def dr(u: np.ndarray) -> np.ndarray:
        a = sigmoid(np.multiply.outer(w1 * u + b1, w2) + b2)
        return w1 * (1 + (a * (1 - a)) @ (w2 * w3))

    g0 = float(p["gamma_min"])
    g1 = g0 + float(softplus(p["gap"]))
    span = r(np.array(1.0)) - r(np.array(0.0))
    return g0 + (g1 - g0) * (r(t) - r(np.array(0.0))) / span, (g1 - g0) * dr(t) / span


def test_gamma_is_the_rescaled_monotone_network() -> None:
    torch.manual_seed(3)
    gamma = MonotoneLogSNR(-7.0, 4.0, hidden=16)
    with torch.no_grad():
        for param in gamma.shape_parameters():
            param.add_(torch.randn(param.shape))  # away from the initialization, biases included
    t = torch.linspace(0, 1, 33, dtype=torch.float64).requires_grad_(True)
    g, dg = numpy_gamma(gamma, t.detach().numpy())
    got = gamma.double()(t)
    (slope,) = torch.autograd.grad(got.sum(), t)
    np.testing.assert_allclose(got.detach().numpy(), g, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(slope.numpy(), dg, rtol=1e-10)
    assert g[0] == pytest.approx(-7.0) and g[-1] == pytest.approx(4.0)
    assert (dg > 0).all()


def test_the_default_gamma_spans_minus_10_to_5_with_fresh_layers() -> None:
    """Defaults: γ from -10 to 5 (VDM's learned range is about -13.3..5); weights N(0, 1/fan_in), zero biases,
    and no bias in the last layer, whose constant would cancel in the rescaling."""
    torch.manual_seed(0)
    gamma = MonotoneLogSNR()
    torch.testing.assert_close(torch.stack(gamma.endpoints()).detach(), torch.tensor([-10.0, 5.0]))
    assert gamma.l3.bias is None and gamma.l2.weight.shape == (64, 1) and gamma.l3.weight.shape == (1, 64)
    assert [n for n, _ in gamma.named_parameters()] == [
        "gamma_min", "gap", "l1.weight", "l1.bias", "l2.weight", "l2.bias", "l3.weight",
    ]  # fmt: skip
    assert [id(p) for p in gamma.shape_parameters()] == [
        id(p) for p in (gamma.l1.weight, gamma.l1.bias, gamma.l2.weight, gamma.l2.bias, gamma.l3.weight)
    ]
    wide = PositiveLinear(400, 300)
    assert float(wide.weight.detach().std()) == pytest.approx(400**-0.5, rel=0.02)
    assert float(wide.bias.detach().abs().max()) == 0.0
    x = torch.randn(5, 400)
    torch.testing.assert_close(wide(x), x @ torch.nn.functional.softplus(wide.weight).T + wide.bias)


class Known(torch.nn.Module):
    """A network whose output is a fixed function of (z, t): ε̂ is known in closed form."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, z: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        self.seen.append(t)
        return 0.5 * z + t.reshape(-1, *[1] * (z.ndim - 1)) - 0.2


@pytest.mark.parametrize("target", ["eps", "x0"])
def test_vdm_terms_match_the_closed_forms_for_data_away_from_zero(target: str) -> None:
    """VDM eq. 17 and its prior and reconstruction, per sample, from the same draws (u₀, then ε) in numpy:
    diffusion ½ γ'(t)‖ε - ε̂(z_t; t)‖² at t_i = (u₀ + i/n) mod 1, prior KL(N(α₁x, σ₁²) ‖ N(0, 1)),
    reconstruction E[-log N(x; z₀/α₀, e^{γ₀})] = ½(log 2π + γ₀ + 1) per dimension."""
    torch.manual_seed(1)
    gamma = MonotoneLogSNR(-6.0, 4.0, hidden=8)
    x = torch.tensor([[1.5, -0.5, 0.0], [0.3, 2.0, -1.0], [-1.2, 0.7, 0.4], [0.0, 0.0, 3.0]])
    net = Known()
    terms = vdm_terms(net, gamma, target, x, generator=torch.Generator().manual_seed(7))  # type: ignore[arg-type]
    g = torch.Generator().manual_seed(7)
    u0 = float(torch.rand((), generator=g))
    eps = torch.randn(x.shape, generator=g).double().numpy()
    t = (u0 + np.arange(4) / 4) % 1.0
    gt, dg = numpy_gamma(gamma, t)
    alpha, sigma = np.sqrt(sigmoid(-gt))[:, None], np.sqrt(sigmoid(gt))[:, None]
    z = alpha * x.numpy() + sigma * eps
    out = 0.5 * z + t[:, None] - 0.2
    eps_hat = out if target == "eps" else (z - alpha * out) / sigma
    np.testing.assert_allclose(net.seen[-1].detach().numpy(), t, rtol=0, atol=2e-7)
    diffusion = 0.5 * dg * ((eps - eps_hat) ** 2).sum(1)
    np.testing.assert_allclose(terms.diffusion.detach().numpy(), diffusion, rtol=2e-5)
    var1 = sigmoid(4.0)
    prior = 0.5 * (var1 + (1 - var1) * x.double().numpy() ** 2 - 1 - np.log(var1)).sum(1)
    np.testing.assert_allclose(terms.prior.detach().numpy(), prior, rtol=1e-5)
    np.testing.assert_allclose(terms.reconstruction.detach().numpy(), 1.5 * (np.log(2 * np.pi) - 6.0 + 1), rtol=1e-5)
    torch.testing.assert_close(terms.total, terms.diffusion + terms.prior + terms.reconstruction)
    # Image-shaped data (per-sample α, σ broadcast over all dimensions) and a batch of one are no special cases.
    images = vdm_terms(net, gamma, target, x.reshape(4, 3, 1, 1), generator=torch.Generator().manual_seed(7))  # type: ignore[arg-type]
    for name in ("diffusion", "prior", "reconstruction"):
        torch.testing.assert_close(getattr(images, name), getattr(terms, name))
    one = vdm_terms(net, gamma, target, x[:1], generator=torch.Generator().manual_seed(7))  # type: ignore[arg-type]
    torch.testing.assert_close(one.prior, terms.prior[:1])
    torch.testing.assert_close(one.reconstruction, terms.reconstruction[:1])
    # The reconstruction's closed form is the expectation over z₀ of the decoder's NLL.
    e = np.random.default_rng(0).standard_normal((200_000, 3))
    a0, s0 = np.sqrt(sigmoid(6.0)), np.sqrt(sigmoid(-6.0))
    x_rows = x.double().numpy()[1]
    decoded = (a0 * x_rows + s0 * e) / a0
    nll = 0.5 * (np.log(2 * np.pi) - 6.0 + (x_rows - decoded) ** 2 / np.exp(-6.0)).sum(1)
    assert nll.mean() == pytest.approx(float(terms.reconstruction[1]), abs=4 * nll.std() / np.sqrt(len(nll)))


def test_vdm_gradients_split_the_bound_and_the_second_moment() -> None:
    """The network and γ's endpoints descend the bound; γ's shape descends E[L_diff²]; unreached parameters get None."""
    torch.manual_seed(2)
    joint = LearnedScheduleModel(MLP(2, hidden=16, depth=1))
    unused = torch.nn.Parameter(torch.ones(3))
    x = torch.randn(16, 2, generator=torch.Generator().manual_seed(0))
    terms = vdm_terms(joint.net, joint.gamma, "eps", x, generator=torch.Generator().manual_seed(1))
    vlb = terms.total.mean() / 2
    params = [*joint.parameters(), unused]
    shape_ids = {id(p) for p in joint.gamma.shape_parameters()}
    rest = [p for p in params[:-1] if id(p) not in shape_ids]
    expected_rest = torch.autograd.grad(vlb, rest, retain_graph=True)
    expected_shape = torch.autograd.grad(
        terms.diffusion.pow(2).mean(), joint.gamma.shape_parameters(), retain_graph=True
    )
    got = vdm_gradients(terms, vlb, params, joint.gamma)
    assert got[-1] is None
    by_id = dict(zip(map(id, params), got, strict=True))
    for p, grad in zip(rest, expected_rest, strict=True):
        torch.testing.assert_close(by_id[id(p)], grad)
    for p, grad in zip(joint.gamma.shape_parameters(), expected_shape, strict=True):
        torch.testing.assert_close(by_id[id(p)], grad)
    assert any(float(g.abs().max()) > 0 for g in expected_shape)


class DoubleGamma(MonotoneLogSNR):
    """γ evaluated in float64 (vdm_terms draws t in float32, so γ'(t) is still rounded to float32)."""

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return super().forward(t.double())


class Small(torch.nn.Module):
    """A small network of (z, t) in float64."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(3, 2).double()

    def forward(self, z: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return torch.tanh(self.lin(torch.cat([z, t[:, None].to(z.dtype)], dim=1)))


def test_vdm_gradients_are_the_derivatives_of_the_estimate() -> None:
    """Directional derivatives of the bound (network, endpoints) and of E[L_diff²] (γ's shape), with the draws held
    fixed, against central differences: the gradient must flow through γ'(t) as well as through α_t and σ_t."""
    torch.manual_seed(5)
    joint = LearnedScheduleModel(Small(), DoubleGamma(-6.0, 3.0, hidden=8).double())
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    params = list(joint.parameters())
    shape_ids = {id(p) for p in joint.gamma.shape_parameters()}

    def estimates() -> tuple[torch.Tensor, torch.Tensor, VDMTerms]:
        terms = vdm_terms(joint.net, joint.gamma, "eps", x, generator=torch.Generator().manual_seed(1))
        return terms.total.mean() / 2, terms.diffusion.pow(2).mean(), terms

    vlb, _, terms = estimates()
    grads = vdm_gradients(terms, vlb, params, joint.gamma)
    direction = [
        torch.randn(p.shape, generator=torch.Generator().manual_seed(i)).double() for i, p in enumerate(params)
    ]
    for shape, index in ((False, 0), (True, 1)):
        chosen = [(p, d, g) for p, d, g in zip(params, direction, grads, strict=True) if (id(p) in shape_ids) == shape]
        analytic = sum(float((d * g).sum()) for _, d, g in chosen)  # type: ignore[operator]
        step, values = 1e-3, []
        for sign in (1, -1):
            with torch.no_grad():
                for p, d, _ in chosen:
                    p.add_(sign * step * d)
            values.append(float(estimates()[index].detach()))
            with torch.no_grad():
                for p, d, _ in chosen:
                    p.sub_(sign * step * d)
        # γ'(t) in float32 limits the differences to about 1e-4
        assert analytic == pytest.approx((values[0] - values[1]) / (2 * step), rel=1e-3), shape


def test_discretize_samples_gamma_on_i_over_T_minus_1() -> None:
    """ᾱ_i = sigmoid(-γ(i/(T-1))), i = 0..T-1 (VDM eq. 3), in float64; γ itself is left as it was."""
    torch.manual_seed(4)
    gamma = MonotoneLogSNR(-9.0, 6.0, hidden=8)
    with torch.no_grad():
        gamma.l2.bias.add_(torch.randn(8))
    for T in (2, 7, 50):
        schedule = discretize(gamma, T)
        g, _ = numpy_gamma(gamma, np.arange(T) / (T - 1))
        assert schedule.alphas_cumprod.dtype == torch.float64
        np.testing.assert_allclose(schedule.alphas_cumprod.numpy(), sigmoid(-g), rtol=1e-6)
        assert schedule.timesteps.tolist() == list(range(T))
    assert gamma.gamma_min.dtype == torch.float32
    joint = LearnedScheduleModel(Known(), gamma)
    torch.testing.assert_close(joint.schedule(9).alphas_cumprod, discretize(gamma, 9).alphas_cumprod)
    z, t = torch.randn(3, 2), torch.rand(3)
    torch.testing.assert_close(joint(z, t), 0.5 * z + t[:, None] - 0.2)


# --- `difflab train --schedule learned` end to end ---

LEARNED_STEPS = 40


@pytest.fixture(scope="module")
def learned_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("learned") / "moons"
    args = cli_args(**{**TINY, "checkpoint_every": 1000}, steps=LEARNED_STEPS, schedule="learned")
    assert main(["train", "--data", "moons", "--out", str(out), *args]) == 0
    return out


def test_a_learned_run_reloads_with_gamma_in_its_weights_and_a_monotone_schedule(learned_run: Path) -> None:
    run = load(learned_run).model
    model = run.denoiser.model
    assert isinstance(model, LearnedScheduleModel)
    assert {"gamma.gamma_min", "gamma.gap", "gamma.l2.weight"} <= set(final_state(learned_run)["ema"])
    snr = run.schedule.snr
    assert len(run.schedule) == TINY["timesteps"]
    assert bool(torch.isfinite(snr).all()) and bool((snr[1:] < snr[:-1]).all())
    # The schedule is the trained (EMA) γ's, not the one the network was built with.
    torch.testing.assert_close(run.schedule.alphas_cumprod, discretize(model.gamma, TINY["timesteps"]).alphas_cumprod)
    untrained = discretize(MonotoneLogSNR(), TINY["timesteps"]).alphas_cumprod
    assert not torch.allclose(run.schedule.alphas_cumprod, untrained, rtol=1e-6, atol=0.0)
    losses = [float(line.split('"loss": ')[1].split(",")[0]) for line in (learned_run / "metrics.jsonl").open()]
    assert len(losses) == LEARNED_STEPS // TINY["log_every"] and all(np.isfinite(losses))


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_every_sampler_draws_finite_samples_from_a_learned_run(learned_run: Path, tmp_path: Path, sampler: str) -> None:
    out = tmp_path / "s.npy"
    assert main(["sample", str(learned_run), "--sampler", sampler, "--steps", "8", "--n", "64", "--out", str(out)]) == 0
    x = np.load(out)
    assert x.shape == (64, 2) and np.isfinite(x).all()


def test_evaluate_nll_prints_a_finite_bound_on_the_discretized_schedule(
    learned_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(learned_run), "--nll", "--n", "200"]) == 0
    printed = capsys.readouterr().out
    bound = re.match(r"NLL bound (\S+) ± \S+ bits/dim .*\n.*variance small, 20 steps,", printed)
    assert bound and np.isfinite(float(bound[1])), printed


def test_a_resumed_learned_run_is_bit_identical_to_an_uninterrupted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Crash at step 7, after the step-5 checkpoint: resuming from step 5 ends exactly as the whole run."""
    whole, resumed = crash_at_step_7(tmp_path, monkeypatch, schedule="learned")
    built = resumed.denoiser.schedule.alphas_cumprod
    assert resumed.restore() and resumed.step == 5
    # restoring re-discretizes the restored γ
    assert_identical(resumed.denoiser.schedule.alphas_cumprod, resumed.model.schedule(20).alphas_cumprod)
    assert not torch.equal(resumed.denoiser.schedule.alphas_cumprod, built)
    resumed.fit(progress=False)
    assert_identical(final_state(tmp_path / "cut"), final_state(tmp_path / "whole"))
    assert_identical(resumed.denoiser.schedule.alphas_cumprod, whole.denoiser.schedule.alphas_cumprod)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--learned-variance"], "has no variance term; drop --learned-variance"),
        (["--weighting", "elbo"], "--weighting elbo does not apply"),
        (["--loss", "huber"], "--loss huber does not apply"),
    ],
)
def test_options_the_vdm_bound_ignores_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    assert main(["train", "--schedule", "learned", *flags, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(("timesteps", "terminal"), [(20, "0.817"), (300, "0.0481")])
def test_training_warns_when_a_schedule_does_not_end_near_pure_noise(
    tmp_path: Path, timesteps: int, terminal: str
) -> None:
    """ᾱ_{T-1} above 0.01 is signal left where sampling starts from N(0, I): 'series' ends at 0.82 for T = 20 and
    still at 0.048 for T = 300."""
    assert make_schedule("series", timesteps).terminal_alpha_bar == pytest.approx(float(terminal), rel=1e-3)
    with pytest.warns(UserWarning, match=f"schedule 'series' with T={timesteps} ends at ᾱ={terminal}, not ≈ 0"):
        tiny_trainer(tmp_path / "series", schedule="series", timesteps=timesteps, steps=2).fit(progress=False)


def test_a_learned_schedule_is_checked_again_after_training(tmp_path: Path) -> None:
    """γ_1 moves while training; a schedule that ends far from noise must be reported after fit too."""
    trainer = tiny_trainer(tmp_path / "learned", schedule="learned", steps=2)
    with torch.no_grad():
        trainer.denoiser.model.gamma.gap.fill_(0.5)  # γ_1 = -10 + softplus(0.5) ≈ -9: ᾱ_T ≈ 1
    with pytest.warns(UserWarning, match="after training ends at"):
        trainer.fit(progress=False)


def test_a_learned_run_respaces_with_trailing_steps_by_default(learned_run: Path) -> None:
    """Quadratic steps assume cosine-like spread of noise levels over t; a learned γ need not have it."""
    assert load(learned_run).resolve(steps=10).spacing == "trailing"


def test_a_learned_run_samples_its_full_chain_unless_steps_are_asked_for(learned_run: Path) -> None:
    """Its noise levels bunch in the last quarter of t, where a 20-step solver has few steps to spend."""
    run = load(learned_run)
    full, few = run.resolve(), run.resolve(steps=10)
    assert (full.sampler, full.steps) == ("ddpm", len(run.model.schedule))
    assert (few.sampler, few.steps) == (run.kind.defaults.sampling.few_step_sampler, 10)
