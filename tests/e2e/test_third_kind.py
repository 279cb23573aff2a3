"""A third kind of data, written here and nowhere else, trains, samples, evaluates and plots through the library.

`Signals` is a minimal plug-in: 1-D sine waves of 16 samples with a random phase ("waves"). It is registered
for this module only; nothing outside this file and the registry call knows it exists, which is the promise
of `difflab.kind` and docs/api.md ("Adding a kind of data").
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import difflab
from difflab import kinds
from difflab.cli import main
from difflab.config import TrainConfig
from difflab.data.normalize import MinMaxScaler
from difflab.data.training_set import DataInfo, DataSource, TrainingSet, fingerprint
from difflab.defaults import KindDefaults, SamplingDefaults
from difflab.evaluation import Evaluation, Stat
from difflab.kind import RunView
from difflab.model import TrainedModel
from difflab.sampling import Sampling

LENGTH = 16
PHASES = np.linspace(0, 2 * np.pi, LENGTH, endpoint=False)

SIGNALS = KindDefaults(
    name="signals",
    item_name="signals",
    sampling=SamplingDefaults("ddim", "ddim", 20, 20, "trailing", 1.0, None, 256),
    training={"steps": 300, "lr": 3e-3, "hidden": 32, "depth": 1, "fourier_features": 0, "timesteps": 50},
    evaluate_size=("n", 200),
    evaluate_draws=2,
    plot_n=8,
    plot_n_means="signals",
    animate_n=4,
    snapshot_n=4,
    sample_suffixes=(".npy",),
    spec_names=("waves",),
)


def waves(n: int, seed: int) -> np.ndarray:
    """n unit sine waves of LENGTH samples with a random phase each."""
    phase = np.random.default_rng(seed).uniform(0, 2 * np.pi, size=(n, 1))
    return np.sin(PHASES[None, :] + phase)


def amplitude_error(x: np.ndarray) -> float:
    """How far each signal's largest absolute value is from 1 (a wave's amplitude), on average."""
    return float(np.abs(np.abs(x).max(axis=1) - 1.0).mean())


class Signals:
    """1-D signals (N, LENGTH): a complete kind in sixty lines."""

    defaults = SIGNALS

    def absolute_spec(self, spec: str) -> str:
        return spec

    def is_builtin(self, spec: str) -> bool:
        return spec == "waves"

    def load_spec(self, spec: str, cfg: TrainConfig) -> np.ndarray:
        return waves(cfg.n_data, cfg.seed)

    def from_array(self, array: np.ndarray, labels: Any, columns: list[str] | None = None) -> np.ndarray:
        raise difflab.UserError("signals come from the 'waves' spec")

    def training_set(self, data: np.ndarray, cfg: TrainConfig, spec: str) -> TrainingSet:
        scaler = MinMaxScaler.fit(data, spec)
        info = DataInfo((LENGTH,), scaler, None, self.defaults.name)
        source = DataSource(spec, len(data), fingerprint(data, None), stored=True)
        return TrainingSet(torch.as_tensor(scaler.transform(data), dtype=torch.float32), None, info, source)

    def settle_config(self, cfg: TrainConfig, training_set: TrainingSet) -> TrainConfig:
        return cfg

    def data_copy(self, data: np.ndarray) -> dict[str, np.ndarray]:
        return {"x": data}

    def from_copy(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        return arrays["x"]

    def output(self, model: TrainedModel, x: torch.Tensor) -> np.ndarray:
        return model.to_data_units(x)

    def write_samples(self, samples: np.ndarray, path: Path, info: DataInfo) -> None:
        np.save(path, samples)

    def snapshot(self, model: TrainedModel, x: torch.Tensor) -> np.ndarray:
        return model.to_data_units(x)

    def log_snapshot(self, writer: Any, snapshot: np.ndarray, step: int) -> None:
        writer.add_scalar("amplitude_error", amplitude_error(snapshot), step)

    def write_progress(self, snapshots: list[tuple[int, np.ndarray]], folder: Path) -> list[Path]:
        return []

    def evaluate(self, run: RunView, sampling: Sampling, *, n: int | None, draws: int | None, **_: Any) -> Evaluation:
        n, draws = n or self.defaults.evaluate_size[1], draws or self.defaults.evaluate_draws
        errors = [amplitude_error(self.output(run.model, run.draw(n, sampling, seed=i))) for i in range(draws)]
        lines = [f"amplitude error {Stat(errors).format(3)}"]
        return Evaluation("signals", {"amplitude_error": Stat(errors)}, ["amplitude_error"], n, draws, 0,
                          sampling.to_dict(), lines=lines)  # fmt: skip

    def plot(self, run: RunView, folder: Path, sampling: Sampling, *, n: int | None, **_: Any) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        x = self.output(run.model, run.draw(n or self.defaults.plot_n, sampling))
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot(x.T, lw=1)
        ax.set_title(f"waves: {sampling.describe()}")
        path = folder / "signals.png"
        fig.savefig(path)
        plt.close(fig)
        return [path]

    def animate(self, run: RunView, path: Path, sampling: Sampling, **_: Any) -> Path:
        raise difflab.UserError("signals have no animation")

    def write(self, run: RunView, text: str, sampling: Sampling, **_: Any) -> np.ndarray:
        raise difflab.UserError("signals do not write text")


@pytest.fixture(autouse=True)
def registered() -> Iterator[None]:
    kinds.register(SIGNALS, Signals)
    yield
    kinds.unregister(SIGNALS.name)


def test_a_kind_defined_in_a_test_trains_samples_evaluates_and_plots(tmp_path: Path) -> None:
    one_step = difflab.train("waves", progress=False, n_data=512, steps=1).evaluate(progress=False)
    run = difflab.train("waves", tmp_path / "run", progress=False, n_data=512)
    assert run.kind.defaults is SIGNALS and run.config.steps == 300  # the kind's own training defaults
    assert json.loads((tmp_path / "run" / "config.json").read_text())["data"]["kind"] == "signals"
    x = run.sample(50, seed=1)
    assert x.shape == (50, LENGTH) and np.isfinite(x).all()
    assert run.resolve().steps == 20 and run.resolve().sampler == "ddim"  # the kind's sampling defaults
    result = run.evaluate(progress=False)
    assert result.headline == ["amplitude_error"]
    assert result["amplitude_error"].mean < one_step["amplitude_error"].mean / 2  # training taught it the waves
    assert [p.name for p in run.plot(progress=False)] == ["signals.png"]
    assert (tmp_path / "run" / "plots" / "signals.png").stat().st_size > 1000

    loaded = difflab.load(tmp_path / "run")  # the recorded kind comes back from config.json
    assert loaded.kind.defaults is SIGNALS
    assert np.array_equal(loaded.sample(50, seed=1), x)


def test_the_command_line_serves_the_new_kind_without_knowing_it(tmp_path: Path, capsys: Any) -> None:
    assert main(["train", "--data", "waves", "--steps", "20", "--n-data", "256", "--out", str(tmp_path / "r")]) == 0
    assert main(["sample", str(tmp_path / "r"), "--n", "8", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (8, LENGTH)
    assert main(["evaluate", str(tmp_path / "r"), "--per-class", "5"]) == 2  # signals size a draw with --n
    assert "signals runs size a draw with --n, not --per-class" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "r"), "--n", "50"]) == 0
    assert "amplitude error" in capsys.readouterr().out
    assert main(["compare", str(tmp_path / "r"), str(tmp_path / "r")]) == 0
    assert "amplitude_error" in capsys.readouterr().out
