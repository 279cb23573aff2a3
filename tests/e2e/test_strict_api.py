"""The Python API is as strict as the CLI, limits come before work, and messages tell the truth (round 3).

Each case once ended in a raw TypeError, a traceback, a silently odd run or a misleading line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import namedtuple
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import difflab
from difflab.cli import main
from tests.helpers import TINY, cli_args, env, error_line

SMALL = {k: v for k, v in TINY.items() if k not in ("checkpoint_every", "device")} | {"steps": 3}


@pytest.fixture(scope="module")
def run() -> difflab.Run:
    return difflab.train("moons", progress=False, **SMALL)


def test_compare_stays_a_function_whatever_is_imported_first() -> None:
    code = "import difflab, difflab.comparison; difflab.compare; print(callable(difflab.compare))"
    out = subprocess.run([sys.executable, "-c", code], env=env(), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
    with pytest.raises(difflab.UserError, match="a: run directory not found"):
        difflab.compare(["a", "b"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: difflab.load(None), "invalid path=None; expected a path"),
        (lambda r: difflab.train("moons", out=123, **SMALL), "invalid out=123; expected a path"),
        (lambda r: difflab.train("moons", progress="yes", **SMALL), "invalid progress='yes'; expected True, False"),
        (lambda r: r.plot(5), "invalid out=5; expected a path"),
        (lambda r: r.animate(b"x.gif"), "invalid out=b'x.gif'; expected a path"),
        (lambda r: r.save(5), "invalid path=5"),
        (lambda r: r.export(None), "invalid folder=None"),
        (lambda r: r.evaluate(save="no"), "invalid save='no'; expected True or False"),
        (lambda r: r.evaluate(n=5), "n=5 is too few"),
        (lambda r: r.sample(10, progress=1), "invalid progress=1"),
        (lambda r: r.write(7), "invalid text=7; expected a string"),
        (lambda r: r.report(figures="yes"), "invalid figures='yes'"),
        (lambda r: difflab.compare("runs"), "invalid runs='runs'; expected a list of run directories"),
        (lambda r: difflab.dataset(5), "unknown dataset 5"),
        (lambda r: r.sample(10**12), "invalid n=1000000000000; must be from 1 to 1,000,000,000"),
        (lambda r: r.sample(5, seed=2**70), "must be from 0 to 4,611,686,018,427,387,904"),
        (lambda r: difflab.train("moons", grad_clip=1e30, **SMALL), "invalid grad_clip=1e+30; must be in [0, 1e+09]"),
    ],
)
def test_bad_arguments_raise_one_user_error_naming_them(run: difflab.Run, call: Any, message: str) -> None:
    with pytest.raises(difflab.UserError) as caught:
        call(run)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_numpy_scalars_count_as_the_numbers_they_hold(run: difflab.Run) -> None:
    trained = difflab.train("moons", progress=False, **{**SMALL, "steps": np.int64(2), "lr": np.float32(1e-3)})
    assert trained.step == 2 and trained.config.lr == pytest.approx(1e-3)
    assert run.sample(np.int64(7), seed=np.int32(1), guidance=None).shape == (7, 2)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([None] * 50 + ["a"] * 50, "item 0 has no class (None)"),
        (["a"] * 50 + [float("nan")] + ["b"] * 49, "item 50 has no class (nan)"),
        (np.array(["a"] * 99 + [" "]), "item 99 has no class (' ')"),
        (["a"] * 99, "expected shape (100,), got (99,)"),
        ("ab", "labels must be a list or array"),
    ],
)
def test_labels_without_a_class_are_refused_with_their_row(labels: Any, message: str) -> None:
    x = np.random.default_rng(0).normal(size=(100, 2))
    with pytest.raises(difflab.UserError) as caught:
        difflab.train(x, labels=labels, conditional=True, progress=False, **SMALL)
    assert message in str(caught.value)


def test_a_message_shows_a_short_repr_never_a_whole_array() -> None:
    big = np.arange(300_000.0).reshape(1000, 300)
    with pytest.raises(difflab.UserError) as caught:
        difflab.train("moons", progress=False, steps=big)
    assert "<ndarray of shape (1000, 300)>" in str(caught.value) and len(str(caught.value)) < 200
    Frame = namedtuple("Frame", "x")
    with pytest.raises(difflab.UserError) as caught:
        difflab.train(Frame(list(range(10_000))), progress=False)
    assert len(str(caught.value)) < 300


def test_a_truncated_npy_is_named_as_such(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(1000, 2)))
    (tmp_path / "cut.npy").write_bytes((tmp_path / "x.npy").read_bytes()[:5000])
    with pytest.raises(difflab.UserError, match=r"truncated \.npy file: its header promises shape \(1000, 2\)"):
        difflab.train(tmp_path / "cut.npy", progress=False, **SMALL)


def test_the_data_copy_is_refused_before_training_when_the_disk_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    points = tmp_path / "points.csv"  # a file is copied into its run; a built-in set is drawn again
    np.savetxt(points, np.random.default_rng(0).normal(size=(500, 2)), delimiter=",", header="x,y", comments="")
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: usage._replace(free=100))
    with pytest.raises(difflab.UserError, match=r"the run's copy of its data needs about .* of disk"):
        difflab.train(points, tmp_path / "run", progress=False, **SMALL)
    assert not (tmp_path / "run").exists()  # nothing was written


@pytest.mark.parametrize(
    ("text", "suffix", "message"),
    [
        ('steps = 3\nout = "x"\n', ".toml", "'out' is not a training option; give --out on the command line"),
        ('{"steps": 3, "steps": 4}', ".json", "key 'steps' is given twice"),
        ("steps: 3\nsteps: 4\n", ".yaml", "key 'steps' is given twice"),
        ("steps: 3\nlr-warmup: 1\nlr_warmup: 2\n", ".yaml", "option lr_warmup is given twice"),
        ("wings = 2\n", ".toml", "'wings' is not a training option"),
    ],
)
def test_config_files_hold_training_options_once_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, suffix: str, message: str
) -> None:
    config = tmp_path / f"c{suffix}"
    config.write_text(text)
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "r")]) == 2
    assert message in error_line(capsys.readouterr().err)
    assert not (tmp_path / "r").exists()


def test_paths_that_cannot_be_used_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *cli_args(**TINY, steps=3)]) == 0
    capsys.readouterr()
    cases = [
        (["train", "--out", str(a_file), *cli_args(**TINY, steps=3)], "is a file, not a folder"),
        (["train", "--out", str(a_file / "sub"), *cli_args(**TINY, steps=3)], "is a file, so"),
        (["sample", str(a_file), "--out", str(tmp_path / "s.npy")], "is a file, not a run directory"),
        (["export", str(run), "--diffusers", str(a_file)], "is a file, not a folder"),
        (["train", "--config", str(tmp_path), "--out", str(tmp_path / "r")], "is a folder; give the config file"),
        (["train", "--data", f"emnist:{a_file}", "--out", str(tmp_path / "r")], "is a file; emnist:PATH names"),
        (["sample", str(run), "--n", "5", "--out", str(tmp_path / ("x" * 300 + ".npy"))], "File name too long"),
        (["train", "--out", str(tmp_path / ("y" * 300)), *cli_args(**TINY, steps=3)], "File name too long"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in error_line(capsys.readouterr().err), argv
    assert a_file.read_text() == "not a folder"


def test_the_recorded_kind_and_the_headline_reach_the_files(run: difflab.Run, tmp_path: Path) -> None:
    saved = run.save(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "config.json").read_text())["data"]["kind"] == "points"
    saved.evaluate(n=50, draws=1, progress=False)
    assert json.loads((tmp_path / "saved" / "eval.json").read_text())["headline"] == ["ratio", "precision", "recall"]


def test_a_built_in_draw_that_cannot_fit_in_memory_is_refused_before_it_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("difflab.limits.available_memory", lambda: 1 << 20)  # 1 MB free
    for call in (
        lambda: difflab.train("moons", n_data=100_000, progress=False),
        lambda: difflab.dataset("moons", 100_000),
    ):
        with pytest.raises(difflab.UserError, match=r"drawing 100,000 points of moons needs about 19\.1 MB of memory"):
            call()
