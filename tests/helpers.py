"""Shared by the training tests: a tiny config, in-process training, and subprocess launches of the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from difflab.checkpoint import load_state, load_weights
from difflab.config import TrainConfig, make_config
from difflab.data.source import load_points
from difflab.distributed import World
from difflab.points.kind import PointKind
from difflab.run import EMA, MODEL, STATE, RunRecord, RunStore, latest_checkpoint_dir
from difflab.testing import GaussianData
from difflab.trainer import Trainer

SRC = Path(__file__).resolve().parents[1] / "src"

#: The Gaussian data every exact-denoiser test uses: correlated, off-centre, unequal variances.
GAUSS = GaussianData(torch.tensor([0.3, -0.2]), torch.tensor([[0.25, 0.1], [0.1, 0.09]]))

TINY = {
    "n_data": 96,
    "batch_size": 16,
    "hidden": 16,
    "depth": 1,
    "timesteps": 20,
    "lr_warmup": 3,
    "log_every": 4,
    "checkpoint_every": 5,
    "device": "cpu",
    # one thread: the default picks threads from the cores free at the start, and runs compared bit for bit must
    # not differ in how their sums were split (under pytest-xdist the other worker decides what is free)
    "threads": 1,
}


def tiny_config(**changes: Any) -> TrainConfig:
    """A config that trains in milliseconds per step."""
    return make_config({**TINY, "steps": 12, **changes})


def point_set(cfg: TrainConfig):  # type: ignore[no-untyped-def]
    """The normalized training set of a point config."""
    return PointKind().training_set(load_points(cfg.data, cfg.n_data, cfg.seed), cfg, cfg.data)


def tiny_trainer(run_dir: Path | None, world: World | None = None, **changes: Any) -> Trainer:
    """A trainer writing into `run_dir` (None: in memory)."""
    cfg = tiny_config(**changes)
    data = point_set(cfg)
    store = None if run_dir is None else RunStore(run_dir, RunRecord(cfg, data.info, data.source))
    return Trainer(cfg, data, store, world=world, where=str(run_dir))


def error_line(stderr: str) -> str:
    """The one error line of a failed command: no traceback, one line with ": error:", and it comes last
    (status lines such as the model size or logged losses may precede it)."""
    lines = stderr.strip().splitlines()
    assert "Traceback" not in stderr, stderr
    errors = [line for line in lines if ": error:" in line]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr
    return errors[0]


def cli_args(**values: Any) -> list[str]:
    """TrainConfig values as command-line flags."""
    return [item for k, v in values.items() for item in ("--" + k.replace("_", "-"), str(v))]


def env() -> dict[str, str]:
    """Child environment: this checkout's sources first, one thread per process (as torchrun does)."""
    path = os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def difflab(*args: str, **kwargs: Any) -> subprocess.Popen[str]:
    """Start `python -m difflab ...` as a child process."""
    return subprocess.Popen(
        [sys.executable, "-m", "difflab", *args],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def final_state(run_dir: Path) -> dict[str, Any]:
    """Everything the last checkpoint holds, for exact comparisons."""
    folder = latest_checkpoint_dir(run_dir)
    assert folder is not None, f"{run_dir} has no checkpoint"
    state = load_state(folder / STATE)
    return {
        "folder": folder.name,
        "model": load_weights(folder / MODEL),
        "ema": load_weights(folder / EMA),
        "state": {k: v for k, v in state.items() if k != "elapsed"},  # wall time differs between runs
    }


def assert_identical(a: Any, b: Any, where: str = "") -> None:
    """Bit-for-bit equality of nested dicts/lists of tensors and numbers."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for k in a:
            assert_identical(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_identical(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def crash_at_step_7(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **changes: Any) -> tuple[Trainer, Trainer]:
    """Train `whole` uninterrupted and a `cut` run that crashes at step 7, after its step-5 checkpoint.

    Returns the finished whole trainer and a fresh, not yet restored trainer on the cut run's directory.
    """
    whole = tiny_trainer(tmp_path / "whole", **changes)
    whole.fit(progress=False)
    cut = tiny_trainer(tmp_path / "cut", **changes)
    real_step = cut.train_step

    def crash_after_7() -> tuple[float, bool]:
        if cut.step == 7:
            raise RuntimeError("simulated crash")
        return real_step()

    monkeypatch.setattr(cut, "train_step", crash_after_7)
    with pytest.raises(RuntimeError, match="simulated crash"):
        cut.fit(progress=False)
    return whole, tiny_trainer(tmp_path / "cut", **changes)
