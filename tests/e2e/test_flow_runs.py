"""Flow-matching and continuous-time runs end to end: points and images, with and without classes, every sampler,
resume, and the combinations that do not apply refused in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import difflab
from difflab.cli import main
from difflab.samplers import SAMPLERS
from tests.helpers import error_line

POINTS = {"steps": 80, "hidden": 32, "depth": 1, "timesteps": 50, "n_data": 400, "batch_size": 64, "log_every": 40}


def test_a_conditional_flow_run_samples_with_every_sampler(tmp_path: Path) -> None:
    run = difflab.train("circles_vs_moons", tmp_path / "run", target="flow", conditional=True, progress=False, **POINTS)
    assert run.config.schedule == "flow" and run.model.schedule.terminal_alpha_bar == 0.0
    for sampler in sorted(SAMPLERS):
        x = run.sample(64, sampler=sampler, steps=6, label=1, guidance=2.0, progress=False)
        assert x.shape == (64, 2) and np.isfinite(x).all(), sampler
    assert np.isfinite(run.sample(64, progress=False)).all()  # the defaults
    again = difflab.load(tmp_path / "run")
    np.testing.assert_array_equal(again.sample(32, seed=4, progress=False), run.sample(32, seed=4, progress=False))


def test_a_flow_image_run_trains_and_draws(tmp_path: Path) -> None:
    options = {"model": "unet", "conditional": True, "steps": 4, "batch_size": 8, "timesteps": 50}
    run = difflab.train("digits", tmp_path / "run", target="flow", progress=False, **options)
    images = run.sample(4, steps=5, progress=False)
    assert images.shape == (4, 1, 8, 8) and np.isfinite(images).all()
    assert images.min() >= 0.0 and images.max() <= 1.0


def test_continuous_time_trains_resumes_and_is_recorded(tmp_path: Path) -> None:
    run = difflab.train("moons", tmp_path / "run", continuous_time=True, progress=False, **POINTS)
    assert run.config.continuous_time and run.step == POINTS["steps"]
    more = run.train(steps=POINTS["steps"] + 20, progress=False)
    assert more.step == POINTS["steps"] + 20 and more.config.continuous_time
    assert np.isfinite(more.sample(50, steps=10, progress=False)).all()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--target", "flow", "--schedule", "cosine"], "trains on --schedule flow, not --schedule cosine"),
        (["--schedule", "flow", "--target", "eps"], "ends in pure noise"),
        (["--target", "flow", "--learned-variance"], "defined for variance-preserving schedules"),
        (["--continuous-time", "--weighting", "elbo"], "the ELBO weight is defined per step"),
        (["--target", "flow", "--sample-variance", "learned"], "needs a model trained with"),
    ],
)
def test_combinations_that_do_not_apply_are_one_line(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--data", "moons", "--out", str(tmp_path / "run"), "--steps", "5", *flags]) == 2
    assert message in error_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


def test_a_learned_variance_asked_of_a_flow_run_says_what_to_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = difflab.train("moons", tmp_path / "run", target="flow", progress=False, **POINTS)
    assert main(["sample", str(run.path), "--variance", "learned", "--out", str(tmp_path / "s.npy")]) == 2
    line = error_line(capsys.readouterr().err)
    assert "needs a run trained with a learned variance" in line and "--variance small or large" in line
    assert not (tmp_path / "s.npy").exists()
