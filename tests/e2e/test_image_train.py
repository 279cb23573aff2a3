"""A tiny class-conditional U-Net run on mnist5k through the CLI: loss falls, sampling, figures and `write` work."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from difflab.api import load
from difflab.cli import main
from difflab.errors import UserError
from difflab.images import figures
from difflab.images.pixels import PAD

TINY = ["--model", "unet", "--conditional", "--steps", "24", "--batch-size", "8", "--timesteps", "50"]
TINY += ["--lr", "2e-3", "--lr-warmup", "1", "--log-every", "4", "--target", "eps"]
# One thread: the default takes the cores free at each call, and outputs compared bit for bit must sum alike.
FAST = ["--steps", "3", "--seed", "1", "--threads", "1"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "mnist"
    assert main(["train", "--data", "mnist5k", "--out", str(out), "--device", "cpu", *TINY]) == 0
    return out


def test_training_writes_an_image_run_and_the_loss_falls(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["data"]["shape"] == [1, 28, 28] and cfg["data"]["class_names"] == [str(d) for d in range(10)]
    assert cfg["config"]["weighting"] == "min_snr" and cfg["config"]["fourier_features"] == 0  # image defaults
    losses = [json.loads(line)["loss"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 6 and losses[-1] < 0.7 * losses[0]  # ε-loss starts at ≈1 (zero-initialized output)


def test_sample_npy_and_png(run_dir: Path, tmp_path: Path) -> None:
    assert main(["sample", str(run_dir), "--n", "3", "--class", "7", "--out", str(tmp_path / "s.npy"), *FAST]) == 0
    images = np.load(tmp_path / "s.npy")
    assert images.shape == (3, 1, 28, 28) and images.dtype == np.uint8
    assert main(["sample", str(run_dir), "--n", "4", "--out", str(tmp_path / "s.png"), *FAST]) == 0
    assert Image.open(tmp_path / "s.png").size == (2 * (2 * 30 + 2),) * 2  # 2×2 grid, 2-pixel pads, scale 2


def test_images_clip_by_default_and_clip_none_turns_it_off(run_dir: Path, tmp_path: Path) -> None:
    """`--clip` reaches image sampling: the default clips x̂_0 to the pixel range, `--clip none` does not."""
    paths = {c: tmp_path / f"{c}.npy" for c in ("default", "clip", "none")}
    for clip, path in paths.items():
        flags = [] if clip == "default" else ["--clip", clip]
        assert main(["sample", str(run_dir), "--n", "4", "--class", "3", "--out", str(path), *FAST, *flags]) == 0
    images = {c: np.load(p) for c, p in paths.items()}
    assert np.array_equal(images["default"], images["clip"])
    assert not np.array_equal(images["clip"], images["none"])


def test_image_runs_default_to_ddim_50_trailing_steps_guidance_2_and_clipping(run_dir: Path) -> None:
    """Images sample at w = 2 unless told otherwise (point runs: w = 3, tests/e2e/test_cli.py)."""
    run = load(run_dir)
    default = run.resolve()
    assert (default.sampler, default.steps, default.spacing, default.guidance, default.clip) == (
        "ddim",
        50,
        "trailing",
        2.0,
        "clip",
    )
    assert run.resolve(guidance=5).guidance == 5.0


def test_write_renders_text_and_rejects_unknown_characters(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "hello.png"
    assert main(["write", str(run_dir), "42 1", "--out", str(out), "--scale", "1", *FAST]) == 0
    picture = np.asarray(Image.open(out))
    assert picture.shape == (28, 4 * 28)
    assert (picture[:, 2 * 28 : 3 * 28] == 0).all()  # the space is a blank cell
    capsys.readouterr()
    assert main(["write", str(run_dir), "HELLO", "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no class for 'H'" in err and "0123456789" in err


def test_figures(run_dir: Path, tmp_path: Path) -> None:
    run = load(run_dir)
    paths = run.plot(tmp_path, n=2, steps=3, progress=False)
    names = [p.name for p in paths]
    assert len(names) == 13 and names[-3:] == ["all-classes.png", "trajectory.png", "forward.png"]
    assert all(p.is_file() for p in paths)
    assert run.animate(tmp_path / "g.gif", n=4, frames=3, steps=3, progress=False).is_file()
    assert 3 <= Image.open(tmp_path / "g.gif").n_frames <= 4  # up to 3 steps chosen evenly in log SNR, then the final
    glyph = np.zeros((1, 28, 28), dtype=np.uint8)
    glyph[0, 4:24, 12:16] = 255
    ts, cells = figures.forward_cells(run, glyph, 5)
    assert len(ts) == 4 and ts == sorted(ts) and (cells[0] == glyph).all()
    assert abs(float(cells[-1].mean()) - 127.5) < 20  # clean → almost pure noise
    figures.forward_strip(run, glyph, tmp_path / "f.png", columns=5)
    strip = Image.open(tmp_path / "f.png")
    cell = (28 + PAD) * figures.scale_for(28)
    assert cell >= 56 and strip.width >= 5 * cell  # every column wide enough for its "t=…" label
    assert strip.height > cell  # the title and labels sit above the cells


def test_class_lookup_falls_back_to_the_other_case() -> None:
    names = ["0", "A", "b"]
    assert figures.class_for_char(names, "a") == 1 and figures.class_for_char(names, "B") == 2
    with pytest.raises(UserError, match="no class for 'z'"):
        figures.class_for_char(names, "z")
