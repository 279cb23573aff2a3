"""The command line end to end on tiny runs, and every bad-input case: one line, exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import difflab
from difflab.api import load
from difflab.cli import main
from difflab.points.defaults import POINTS
from difflab.run import read_metrics
from tests.helpers import env, error_line

TINY = [
    "--steps",
    "300",
    "--hidden",
    "64",
    "--depth",
    "2",
    "--timesteps",
    "20",
    "--n-data",
    "500",
    "--batch-size",
    "128",
    "--log-every",
    "100",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "moons"
    assert main(["train", "--data", "moons", "--out", str(out), *TINY]) == 0
    return out


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    return error_line(capsys.readouterr().err)


def test_run_directory_contents(run_dir: Path) -> None:
    checkpoint = run_dir / "checkpoints" / "step-000000300"
    assert (run_dir / "checkpoints" / "latest").read_text().strip() == checkpoint.name
    files = [run_dir / "config.json", run_dir / "metrics.jsonl"]
    files += [checkpoint / name for name in ("model.safetensors", "ema.safetensors", "state.pt")]
    for path in files:
        assert path.is_file(), path
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["config"]["steps"] == 300 and cfg["data"]["shape"] == [2] and "difflab_version" in cfg
    assert cfg["format_version"] == 2
    assert [r["step"] for r in read_metrics(run_dir)] == [100, 200, 300]
    assert not list(run_dir.rglob("*.tmp")), "no temporary files left behind"


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_sample_writes_data_units(run_dir: Path, tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"s{suffix}"
    assert main(["sample", str(run_dir), "--n", "250", "--out", str(out), "--chunk-size", "100"]) == 0
    x = np.load(out) if suffix == ".npy" else np.loadtxt(out, delimiter=",", skiprows=1)
    assert x.shape == (250, 2) and np.isfinite(x).all()
    assert x[:, 0].min() < -0.5 and x[:, 0].max() > 1.5  # data units of moons (x from -1 to 2), not [-1, 1]


def test_sample_is_reproducible_by_seed(run_dir: Path, tmp_path: Path) -> None:
    a, b, c = (tmp_path / f"{k}.npy" for k in "abc")
    main(["sample", str(run_dir), "--n", "50", "--out", str(a), "--seed", "3"])
    main(["sample", str(run_dir), "--n", "50", "--out", str(b), "--seed", "3"])
    main(["sample", str(run_dir), "--n", "50", "--out", str(c), "--seed", "4"])
    np.testing.assert_array_equal(np.load(a), np.load(b))
    assert not np.array_equal(np.load(a), np.load(c))


def test_evaluate_plot_animate(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(run_dir), "--n", "300"]) == 0
    assert "floor" in capsys.readouterr().out
    assert main(["plot", str(run_dir), "--out", str(tmp_path), "--n", "200"]) == 0
    for name in ("samples.png", "reverse.png", "forward.png", "schedule.png", "loss.png"):
        assert (tmp_path / name).stat().st_size > 1000, name
    gif = tmp_path / "a.gif"
    assert main(["animate", str(run_dir), "--out", str(gif), "--n", "100", "--frames", "5"]) == 0
    assert gif.read_bytes()[:6] == b"GIF89a"


def test_resume_continues_to_more_steps(run_dir: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    assert main(["train", "--resume", str(copy), "--steps", "400"]) == 0
    assert [r["step"] for r in read_metrics(copy)] == [100, 200, 300, 400]


def test_config_file_and_resolved_config(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('data = "circles"\nsteps = 5\nhidden = 16\ndepth = 1\ntimesteps = 10\nn-data = 100\n')
    yml = tmp_path / "c.yaml"
    yml.write_text("data: parabola\nsteps: 5\nhidden: 16\n")
    out = tmp_path / "r"
    assert main(["train", "--config", str(toml), "--out", str(out), "--steps", "3"]) == 0
    cfg = json.loads((out / "config.json").read_text())["config"]
    assert (cfg["data"], cfg["steps"], cfg["hidden"], cfg["timesteps"]) == ("circles", 3, 16, 10)
    out2 = tmp_path / "r2"
    assert main(["train", "--config", str(yml), "--out", str(out2), "--depth", "1", "--timesteps", "10"]) == 0
    assert json.loads((out2 / "config.json").read_text())["config"]["data"] == "parabola"


def _bad_csv(tmp_path: Path) -> str:
    f = tmp_path / "bad.csv"
    f.write_text("1,2\n3,x\n")
    return str(f)


BAD_COMMANDS = {
    "unknown dataset": (lambda p: ["train", "--data", "spirals", "--out", str(p / "o")], "unknown dataset"),
    "bad file": (lambda p: ["train", "--data", _bad_csv(p), "--out", str(p / "o")], "not a number"),
    "unknown schedule": (lambda p: ["train", "--schedule", "quad", "--out", str(p / "o")], "cosine"),
    "bad int": (lambda p: ["train", "--steps", "ten", "--out", str(p / "o")], "integer"),
    "nan lr": (lambda p: ["train", "--lr", "nan", "--out", str(p / "o")], "finite"),
    "zero steps": (lambda p: ["train", "--steps", "0", "--out", str(p / "o")], "must be from 1 to 1,000,000,000"),
    "unknown flag": (lambda p: ["train", "--colour", "red"], "unrecognized"),
    "unknown command": (lambda p: ["fly"], "invalid choice"),
    "config unknown key": (
        lambda p: ["train", "--config", _write(p / "c.toml", "wings = 2\n"), "--out", "o"],
        "'wings' is not a training option",
    ),
    "config unparsable": (
        lambda p: ["train", "--config", _write(p / "c.toml", "steps = = 2\n"), "--out", "o"],
        "cannot parse",
    ),
    "missing run": (lambda p: ["sample", str(p / "nope"), "--out", str(p / "s.npy")], "not found"),
    "not a run": (lambda p: ["sample", str(p), "--out", str(p / "s.npy")], "not a run directory"),
    "bad sampler": (lambda p: ["sample", str(p), "--out", "s.npy", "--sampler", "magic"], "invalid choice"),
}


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("case", list(BAD_COMMANDS))
def test_bad_input_is_one_line_and_exit_2(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv, message = BAD_COMMANDS[case]
    try:
        code = main(argv(tmp_path))
    except SystemExit as e:  # argparse usage errors
        code = e.code
    assert code == 2
    assert message in _error_line(capsys)


def test_run_errors(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, message in [
        (["sample", str(run_dir), "--out", str(tmp_path / "s.txt")], ".npy or .csv"),
        (
            ["sample", str(run_dir), "--out", str(tmp_path / "s.npy"), "--steps", "999"],
            "this run has 20 steps, so use 1..20",
        ),
        (["sample", str(run_dir), "--out", str(tmp_path / "s.npy"), "--class", "upper"], "trained without classes"),
        (["train", "--data", "moons", "--out", str(run_dir)], "already holds a run"),
        (["train", "--resume", str(run_dir), "--hidden", "8"], "can change (got hidden)"),
    ]:
        assert main(argv) == 2, argv
        assert message in _error_line(capsys)


def test_corrupt_weights_are_a_clear_error(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    copy = tmp_path / "c"
    shutil.copytree(run_dir, copy)
    (copy / "checkpoints" / "step-000000300" / "ema.safetensors").write_bytes(b"garbage")
    assert main(["sample", str(copy), "--out", str(tmp_path / "s.npy")]) == 2
    assert "corrupt" in _error_line(capsys)


def test_real_process_prints_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "difflab", "train", "--data", str(tmp_path / "none.csv"), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        env=env(),
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "no such file" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_datasets_lists_and_exports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "moons" in out and "complex" in out
    f = tmp_path / "m.csv"
    assert main(["datasets", "--export", "moons", str(f), "--n", "20"]) == 0
    assert f.read_text().splitlines()[0] == "x0,x1,label"


def test_point_runs_default_to_their_kind_s_table_and_walk_the_whole_chain_with_ddpm(run_dir: Path) -> None:
    run = load(run_dir)
    default, few, ancestral = run.resolve(), run.resolve(steps=5), run.resolve(sampler="ddpm")
    s = POINTS.sampling
    assert (default.sampler, default.steps, default.spacing, default.guidance) == (s.sampler, 20, s.spacing, s.guidance)
    assert (few.sampler, few.steps, few.spacing) == (s.few_step_sampler, 5, s.few_step_spacing)  # 5 < few_step_below
    eps = difflab.train("moons", progress=False, target="eps", steps=2, n_data=64, hidden=8, depth=1, timesteps=20)
    assert (default.clip, eps.resolve().clip, eps.resolve(clip="none").clip) == ("none", "clip", "none")
    assert (eps.resolve().sampler, eps.resolve().steps) == (s.noise_target_sampler, 20)  # 50, or all 20 the run has
    assert (ancestral.sampler, ancestral.steps) == ("ddpm", len(run.model.schedule))


@pytest.mark.parametrize(
    "command",
    ["train", "sample", "evaluate", "plot", "animate", "write", "report", "compare", "export", "datasets", None],
)
def test_every_help_page_prints(command: str | None, capsys: pytest.CaptureFixture[str]) -> None:
    """argparse formats help texts with %: one unescaped "10% of it" once broke `difflab train --help`."""
    with pytest.raises(SystemExit) as stop:
        main([command, "--help"] if command else ["--help"])
    assert stop.value.code == 0
    assert "usage: difflab" in capsys.readouterr().out
