"""The Python API: what a newcomer types, on points and images, in memory and on disk."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import difflab
from difflab.points.defaults import POINTS
from tests.helpers import TINY, env

SMALL = {k: v for k, v in TINY.items() if k not in ("n_data", "checkpoint_every", "device")} | {"steps": 40}


def test_import_difflab_is_light_and_exports_the_api() -> None:
    code = "import sys, difflab; print('torch' in sys.modules); print(sorted(difflab.__all__))"
    out = subprocess.run([sys.executable, "-c", code], env=env(), capture_output=True, text=True, check=True)
    loaded, names = out.stdout.splitlines()
    assert loaded == "False"  # nothing heavy until a name is used
    for name in ("train", "load", "Run", "Evaluation", "SamplingOptions", "UserError", "dataset", "compare"):
        assert name in names


def test_an_in_memory_run_from_an_array_with_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-3, 0.3, (300, 2)), rng.normal(3, 0.3, (300, 2))])
    labels = np.array(["left"] * 300 + ["right"] * 300)
    run = difflab.train(x, labels=labels, conditional=True, progress=False, **SMALL)
    assert run.path is None and run.class_names == ["left", "right"] and run.step == 40
    assert [r["step"] for r in run.metrics] == [4, 8, 12, 16, 20, 24, 28, 32, 36, 40]
    samples = run.sample(200, label="right", steps=5, progress=False)
    assert samples.shape == (200, 2) and np.isfinite(samples).all()
    assert samples[:, 0].mean() > samples.min()  # data units (the array's), not [-1, 1]
    assert not list(tmp_path.iterdir())  # nothing written anywhere
    ev = run.evaluate(n=100, draws=2, steps=5, progress=False)
    assert ev["ratio"].std > 0 and len(ev["ratio"].values) == 2 and "ratio" in ev.summary()
    saved = run.save(tmp_path / "saved")
    assert saved.path == tmp_path / "saved" and (tmp_path / "saved" / "data.npz").is_file()
    again = difflab.load(tmp_path / "saved")
    np.testing.assert_array_equal(
        again.sample(50, seed=3, steps=5, progress=False), run.sample(50, seed=3, steps=5, progress=False)
    )
    more = run.train(steps=48, progress=False)
    assert more.step == 48 and [r["step"] for r in more.metrics][-2:] == [44, 48]


def test_the_same_lines_work_on_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    images = rng.random((40, 1, 8, 8)).astype(np.float32)
    images[:20, :, :, :4] = 0.0  # two classes: left half dark, right half dark
    images[20:, :, :, 4:] = 0.0
    run = difflab.train(
        images,
        labels=[0] * 20 + [1] * 20,
        model="unet",
        conditional=True,
        progress=False,
        steps=3,
        batch_size=8,
        timesteps=50,
    )
    x = run.sample(4, label=1, steps=3, progress=False)
    assert x.shape == (4, 1, 8, 8) and x.min() >= 0.0 and x.max() <= 1.0
    paths = run.plot(tmp_path / "figures", n=2, steps=3, progress=False)
    assert {"all-classes.png", "trajectory.png", "forward.png"} <= {p.name for p in paths}
    picture = run.write("0110", steps=3, progress=False)
    assert picture.shape == (8, 32) and Image.fromarray(picture).size == (32, 8)  # Pillow saves it as it is


def test_images_get_the_image_defaults_and_the_users_values_win() -> None:
    images = np.random.default_rng(2).random((16, 1, 8, 8)).astype(np.float32)
    run = difflab.train(images, progress=False, steps=1, batch_size=4, timesteps=20)
    assert (run.config.model, run.config.target, run.config.steps) == ("unet", "eps", 1)  # no --model unet needed
    assert difflab.train(images, progress=False, steps=1, timesteps=20).config.batch_size == 64
    assert difflab.train(images, progress=False, steps=1, batch_size=4, target="v", timesteps=20).config.target == "v"
    points = difflab.train(np.random.default_rng(3).normal(size=(64, 2)), progress=False, steps=1)
    assert (points.config.model, points.config.target, points.config.batch_size) == ("mlp", "v", 512)


def test_a_built_in_set_with_its_own_budget_gets_it_unless_steps_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    from difflab.points.defaults import POINTS, SET_STEPS
    from difflab.points.kind import PointKind

    assert POINTS.training_for("parabola") == POINTS.training_for("moons")  # 3,000 steps were too few
    short = dataclasses.replace(POINTS, per_set={"parabola": {"steps": 3}})  # the same mechanism, a short budget
    monkeypatch.setattr(PointKind, "defaults", short)
    assert difflab.train("parabola", progress=False, n_data=64, batch_size=16).step == 3
    assert difflab.train("parabola", progress=False, n_data=64, batch_size=16, steps=2).step == 2
    assert SET_STEPS == {"complex": 30_000, "checkerboard": 30_000, "circles_vs_moons": 60_000}  # RESULTS-teachers.md
    assert POINTS.training_for("complex")["steps"] == 30_000


def test_data_from_a_file_a_name_and_a_tensor(tmp_path: Path) -> None:
    csv = tmp_path / "points.csv"
    csv.write_text("a,b\n" + "".join(f"{k},{k * k % 7}\n" for k in range(50)))
    from_file = difflab.train(csv, progress=False, **{**SMALL, "steps": 4})
    assert from_file.config.data == str(csv.absolute()) and from_file.config.n_data == 50
    tensor = difflab.train(torch.randn(64, 3), progress=False, **{**SMALL, "steps": 4})
    assert tensor.info.shape == (3,) and tensor.source.spec == "array"
    assert len(difflab.dataset("moons", n=10).x) == 10 and "moons" in difflab.datasets()


def test_a_built_in_set_is_drawn_again_not_copied_and_a_file_is_copied(tmp_path: Path) -> None:
    csv = tmp_path / "points.csv"
    csv.write_text("a,b\n" + "".join(f"{k},{k * k % 7}\n" for k in range(50)))
    from_file = difflab.train(csv, tmp_path / "file", progress=False, **{**SMALL, "steps": 4})
    built_in = difflab.train("moons", tmp_path / "moons", progress=False, **{**SMALL, "steps": 4, "n_data": 5000})
    assert (tmp_path / "file" / "data.npz").exists() and len(from_file.data_copy()["x"]) == 50
    assert not (tmp_path / "moons" / "data.npz").exists()  # drawn again from its name, n_data and seed
    more = difflab.load(tmp_path / "moons").train(steps=6, progress=False)  # the fingerprint matches the new draw
    assert more.step == 6 and more.source.fingerprint == built_in.source.fingerprint
    with pytest.raises(difflab.UserError, match="keeps no copy"):
        built_in.data_copy()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: difflab.train(np.zeros((4, 2, 2))), "expected points (N, D) or images (N, C, H, W)"),
        (lambda: difflab.train(np.zeros((10, 2)), labels=[1, 2]), "one entry per item"),
        (lambda: difflab.train("moons", steps=0), "invalid steps=0; must be from 1 to 1,000,000,000"),
        (lambda: difflab.train("moons", wings=2), "unknown option(s) wings"),
        (lambda: difflab.train("moons", labels=[1]), "labels go with an array"),
        (lambda: difflab.train(np.full((10, 2), np.nan)), "non-finite value"),
    ],
)
def test_bad_calls_raise_one_user_error(call, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(difflab.UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


def test_sampling_options_are_named_and_checked() -> None:
    run = difflab.train("moons", progress=False, **{**SMALL, "steps": 4})
    assert run.resolve().sampler == POINTS.sampling.sampler and run.resolve().steps == POINTS.sampling.steps
    assert run.resolve(sampler="ddpm").steps == len(run.model.schedule)
    with pytest.raises(difflab.UserError, match="unknown sampling option"):
        run.sample(10, temperature=2.0, progress=False)
    with pytest.raises(difflab.UserError, match="weighs classes"):
        run.sample(10, guidance=2.0, progress=False)
