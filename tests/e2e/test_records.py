"""Records of a run: the live metrics log, TensorBoard, training snapshots, the HTML report (in a real browser),
and the comparison of runs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import difflab
from difflab.cli import main
from difflab.run import METRICS
from tests.helpers import TINY

SMALL = {**TINY, "steps": 40, "log_every": 10, "checkpoint_every": 20}


def chromium() -> str:
    """The headless browser `make test` installs (tools/ensure-chromium)."""
    for name in ("chromium-headless-shell", "chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("no Chromium: run tools/ensure-chromium (make test and .ci/run do)")


def render(page: Path, tmp_path: Path) -> tuple[str, np.ndarray]:
    """(the DOM after load, a screenshot as an RGB array) of a local page, offline."""
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    browser = chromium()
    url = page.resolve().as_uri()
    dom = subprocess.run([browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    shot = tmp_path / "shot.png"
    subprocess.run(
        [browser, *flags, f"--screenshot={shot}", "--window-size=1100,2000", url], capture_output=True, timeout=120
    )
    return dom, np.asarray(Image.open(shot).convert("RGB"))


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("records") / "run"
    run = difflab.train("moons", out, sample_every=20, tensorboard=True, progress=False, **SMALL)
    run.evaluate(n=60, draws=2, steps=5, progress=False)
    run.plot(n=80, steps=5, progress=False)
    return out


def test_the_log_is_appended_live_with_wall_time(evaluated: Path) -> None:
    rows = [json.loads(line) for line in (evaluated / METRICS).read_text().splitlines()]
    assert [r["step"] for r in rows] == [10, 20, 30, 40]
    assert all(r["steps_per_s"] > 0 and r["elapsed"] > 0 and r["time"] > 1.7e9 for r in rows)
    assert [r["elapsed"] for r in rows] == sorted(r["elapsed"] for r in rows)


def test_tensorboard_holds_the_loss_and_the_snapshots(evaluated: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(evaluated / "tensorboard"), size_guidance={"images": 0}).Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [10, 20, 30, 40]
    assert {"train/lr", "train/steps_per_s"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Images("samples")] == [20, 40]


def test_snapshots_survive_a_resume_and_make_the_progress_figures(evaluated: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(evaluated, copy)
    assert main(["train", "--resume", str(copy), "--steps", "60"]) == 0
    assert sorted(p.name for p in (copy / "progress").iterdir()) == [
        "step-000000020.npy",
        "step-000000040.npy",
        "step-000000060.npy",
    ]
    strip = Image.open(copy / "plots" / "progress.png")
    assert strip.width > 3 * strip.height  # a strip of three panels
    assert Image.open(copy / "plots" / "progress.gif").n_frames == 3


def test_the_report_renders_in_a_browser_with_every_image(evaluated: Path, tmp_path: Path) -> None:
    assert main(["report", str(evaluated)]) == 0
    page = evaluated / "report.html"
    text = page.read_text()
    assert "http://" not in text and "https://" not in text  # self-contained: nothing to fetch
    figures = len(list((evaluated / "plots").glob("*.png"))) + len(list((evaluated / "plots").glob("*.gif")))
    assert figures >= 6 and text.count("<img ") == figures
    dom, shot = render(page, tmp_path)
    assert f'data-images-loaded="{figures}"' in dom, dom[-400:]
    assert "ratio" in dom and "sample_every" in dom  # evaluation and the config differences are on the page
    assert shot.shape[0] > 1000 and shot.std() > 20  # not a blank page
    assert (shot < 100).mean() > 0.01  # text and plot lines drawn in dark pixels


def test_compare_lists_the_options_that_differ_and_each_evaluation(
    evaluated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other"
    difflab.train("moons", other, progress=False, **{**SMALL, "target": "eps", "ema_decay": 0.99})
    capsys.readouterr()
    page = tmp_path / "compare.html"
    assert main(["compare", str(evaluated), str(other), "--evaluate", "--html", str(page)]) == 0
    table = capsys.readouterr().out.splitlines()
    header = table[0]
    # config order; sample_every and tensorboard differ too, but say how a run was watched, not what it learned
    assert "| run | ema_decay | target | ratio (mean ± std) |" in header and header.endswith("| evaluated |")
    first, second = table[2], table[3]
    assert "| 0.999 | v |" in first and "| 0.99 | eps |" in second
    assert " ± " in first and " ± " in second  # both evaluated, with spread
    assert first.endswith("5 steps, 2 × n=60 |") and " × n=" in second  # which sampling and size made the figures
    assert "<table>" in page.read_text()
    assert (other / "eval.json").is_file()


def test_the_report_names_its_run_as_the_user_would(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from difflab.report import shown_path

    monkeypatch.chdir(tmp_path)
    assert shown_path(tmp_path / "runs" / "demo") == "runs/demo"  # no machine path in a picture of the report
    elsewhere = tmp_path.parent / "other-run"
    assert shown_path(elsewhere) == str(elsewhere.resolve())
