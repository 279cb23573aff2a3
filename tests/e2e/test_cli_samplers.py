"""The CLI's fast samplers, learned variance and `evaluate --nll` on a tiny learned-variance run."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from difflab.cli import main
from difflab.points.defaults import POINTS
from difflab.samplers import SAMPLERS

TINY = ["--steps", "100", "--hidden", "32", "--depth", "1", "--timesteps", "20", "--n-data", "300"]
TINY += ["--batch-size", "64", "--log-every", "50", "--learned-variance"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "lv"
    assert main(["train", "--data", "moons", "--out", str(out), *TINY]) == 0
    return out


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_every_sampler_evaluates_with_few_steps(
    run_dir: Path, sampler: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["evaluate", str(run_dir), "--n", "100", "--draws", "2", "--sampler", sampler, "--steps", "5"]) == 0
    spacing = POINTS.sampling.few_step_spacing if POINTS.sampling.few_step_below > 5 else POINTS.sampling.spacing
    assert f"{sampler}, 5 of 20 steps ({spacing})" in capsys.readouterr().out


def test_learned_variance_and_nll(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "s.npy"
    assert main(["sample", str(run_dir), "--n", "50", "--out", str(out), "--variance", "learned", "--steps", "7"]) == 0
    assert main(["evaluate", str(run_dir), "--n", "200", "--nll", "--variance", "learned"]) == 0
    text = capsys.readouterr().out
    match = re.search(r"NLL bound (-?[0-9.]+) ± [0-9.]+ bits/dim", text)
    assert match is not None and "variance learned, 20 steps" in text, text
    assert main(["evaluate", str(run_dir), "--n", "200", "--nll", "--steps", "4"]) == 0
    assert "variance small, 4 steps" in capsys.readouterr().out


def test_spacing_chooses_the_kept_timesteps(run_dir: Path, tmp_path: Path) -> None:
    """Deterministic DDIM over 5 of 20 steps: the same spacing twice agrees, the two spacings do not."""
    drawn = {}
    for name, spacing in (("a", "trailing"), ("b", "trailing"), ("c", "linspace")):
        out = tmp_path / f"{name}.npy"
        flags = ["--sampler", "ddim", "--steps", "5", "--spacing", spacing, "--n", "20", "--seed", "3"]
        assert main(["sample", str(run_dir), "--out", str(out), *flags]) == 0
        drawn[name] = np.load(out)
    assert np.array_equal(drawn["a"], drawn["b"])
    assert not np.allclose(drawn["a"], drawn["c"])


def test_an_unknown_spacing_is_refused(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", str(run_dir), "--out", str(tmp_path / "s.npy"), "--spacing", "leading"])
    assert exit_info.value.code == 2 and "leading" in capsys.readouterr().err
