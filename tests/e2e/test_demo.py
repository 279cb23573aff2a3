"""`make demo`'s script runs end to end (with a tiny training budget here)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.py"


def test_the_demo_writes_samples_figures_and_a_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("demo", DEMO)
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    monkeypatch.setitem(demo.TRAINING, "steps", 20)
    out = tmp_path / "demo"
    demo.main(out)
    assert np.loadtxt(out / "samples.csv", delimiter=",", skiprows=1).shape == (10_000, 2)
    for name in ("samples.png", "reverse.png", "forward.png", "schedule.png", "loss.png", "denoising.gif"):
        assert (out / "plots" / name).stat().st_size > 1000, name
    assert (out / "eval.json").is_file() and (out / "report.html").is_file()
