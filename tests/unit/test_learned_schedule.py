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
    discretize,
    eps_from_output,
    vdm_terms,
)
from difflab.models.mlp import MLP
from difflab.objectives import VDMObjective
from difflab.process import TARGETS, target_from
from difflab.samplers import SAMPLERS
from difflab.schedule import spaced_timesteps
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
        losses.append(float(loss.value))
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


def test_terms_have_the_closed_form_prior_and_reconstruction() -> None:
    gamma = MonotoneLogSNR(-6.0, 4.0)
    x = torch.zeros(4, 2)
    terms = vdm_terms(lambda z, t, c: torch.zeros_like(z), gamma, "eps", x, generator=torch.Generator().manual_seed(0))
    var1 = torch.sigmoid(torch.tensor(4.0))
    torch.testing.assert_close(terms.prior, (0.5 * (var1 - 1 - var1.log()) * 2).expand(4).detach())
    torch.testing.assert_close(terms.reconstruction, torch.full((4,), 0.5 * (1.8378771 - 6.0 + 1) * 2))
    assert bool((terms.diffusion > 0).all())


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


def test_training_warns_when_a_schedule_does_not_end_near_pure_noise(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="schedule 'series' .* not ≈ 0"):
        tiny_trainer(tmp_path / "series", schedule="series", steps=2).fit(progress=False)


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
