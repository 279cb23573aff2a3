"""The point-data kind: points (N, D) in data units, normalized per column, kept in the run as a copy."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from difflab.checkpoint import atomic_write_bytes
from difflab.config import TrainConfig
from difflab.data.files import labels_from, validate
from difflab.data.normalize import MinMaxScaler
from difflab.data.source import load_points
from difflab.data.toy import DATASETS, PointData
from difflab.data.training_set import DataInfo, DataSource, TrainingSet, fingerprint
from difflab.errors import UserError
from difflab.points.defaults import POINTS

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

    from difflab.evaluation import Evaluation
    from difflab.kind import RunView
    from difflab.model import TrainedModel
    from difflab.sampling import Sampling


def column_names(info: DataInfo) -> list[str]:
    """The data's own column names, or x0, x1, ... when it has none."""
    return info.columns or [f"x{k}" for k in range(info.shape[0])]


class PointKind:
    """Points (N, D); see `difflab.kind.Kind`."""

    defaults = POINTS

    def absolute_spec(self, spec: str) -> str:
        return spec if self.is_builtin(spec) else str(Path(spec).expanduser().absolute())

    def is_builtin(self, spec: str) -> bool:
        return spec in DATASETS

    def load_spec(self, spec: str, cfg: TrainConfig) -> PointData:
        return load_points(spec, cfg.n_data, cfg.seed, cfg.label_column)

    def from_array(self, array: np.ndarray, labels: Any, columns: list[str] | None = None) -> PointData:
        if array.dtype.kind not in "biuf":
            raise UserError(f"points must be numbers, got an array of dtype {array.dtype}")
        x = np.asarray(array, dtype=np.float64)
        x = x[:, None] if x.ndim == 1 else x
        names: list[str] | None = None
        codes = None
        if labels is not None:
            codes, names = labels_from(labels, len(x))
        if columns is not None and len(columns) != x.shape[1]:
            columns = None
        return validate(PointData(x, codes, names, columns), "the array")

    def training_set(self, data: PointData, cfg: TrainConfig, spec: str) -> TrainingSet:
        """Fit the per-column [-1, 1] normalization. The run keeps a copy of a file's or an array's points; a built-in
        set is drawn again from its name, n_data and seed when needed (its fingerprint checks the draw), so its
        200,000 default points cost no disk."""
        scaler = MinMaxScaler.fit(data.x, spec)
        classes = data.class_names if cfg.conditional else None
        info = DataInfo((data.x.shape[1],), scaler, classes, self.defaults.name, data.columns)
        source = DataSource(spec, len(data.x), fingerprint(data.x, data.labels), stored=not self.is_builtin(spec))
        x = torch.as_tensor(scaler.transform(data.x), dtype=torch.float32)
        return TrainingSet(x, data.labels, info, source)

    def settle_config(self, cfg: TrainConfig, training_set: TrainingSet) -> TrainConfig:
        """A file's row count replaces the n_data it did not use, so config.json says what was trained on."""
        if self.is_builtin(cfg.data):
            return cfg
        return cfg.replace(n_data=training_set.source.n_items)

    def data_copy(self, data: PointData) -> dict[str, np.ndarray]:
        arrays = {"x": data.x}
        if data.columns is not None:
            arrays["columns"] = np.array(data.columns, dtype=str)
        if data.labels is not None and data.class_names is not None:
            arrays |= {"labels": data.labels, "class_names": np.array(data.class_names, dtype=str)}
        return arrays

    def from_copy(self, arrays: dict[str, np.ndarray]) -> PointData:
        try:
            x = np.asarray(arrays["x"], dtype=np.float64)
            labels = arrays.get("labels")
            names = [str(s) for s in arrays["class_names"]] if "class_names" in arrays else None
            columns = [str(s) for s in arrays["columns"]] if "columns" in arrays else None
        except (KeyError, ValueError, TypeError) as e:
            raise UserError(f"the run's data copy is damaged ({e})") from None
        codes = None if labels is None else labels.astype(np.int64)
        return validate(PointData(x, codes, names, columns), "the run's data copy")

    def output(self, model: TrainedModel, x: torch.Tensor) -> np.ndarray:
        """Data units (the stored normalization inverted)."""
        return model.to_data_units(x)

    def write_samples(self, samples: np.ndarray, path: Path, info: DataInfo) -> None:
        """.npy (float64) or .csv with the data's own column names as its header (x0, x1, ... without), atomically."""
        buf = io.BytesIO()
        if path.suffix.lower() == ".npy":
            np.save(buf, samples)
        else:
            line = io.StringIO()
            csv.writer(line, lineterminator="").writerow(column_names(info))
            np.savetxt(buf, samples, delimiter=",", header=line.getvalue(), comments="", fmt="%.6g")
        atomic_write_bytes(path, buf.getvalue())

    def snapshot(self, model: TrainedModel, x: torch.Tensor) -> np.ndarray:
        """Points in data units, float32."""
        return model.to_data_units(x).astype(np.float32)

    def log_snapshot(self, writer: SummaryWriter, snapshot: np.ndarray, step: int) -> None:
        from difflab.points.plots import snapshot_figure

        writer.add_figure("samples", snapshot_figure(snapshot, f"step {step}"), step)

    def write_progress(self, snapshots: list[tuple[int, np.ndarray]], folder: Path) -> list[Path]:
        from difflab.points.figures import write_progress

        return write_progress(snapshots, folder)

    def evaluate(self, run: RunView, sampling: Sampling, **options: Any) -> Evaluation:
        from difflab.points.evaluation import evaluate

        return evaluate(run, sampling, **options)

    def plot(self, run: RunView, folder: Path, sampling: Sampling, **options: Any) -> list[Path]:
        from difflab.points.figures import plot

        return plot(run, folder, sampling, **options)

    def animate(self, run: RunView, path: Path, sampling: Sampling, **options: Any) -> Path:
        from difflab.points.figures import animate

        return animate(run, path, sampling, **options)

    def write(self, run: RunView, text: str, sampling: Sampling, **options: Any) -> np.ndarray:
        raise UserError("write renders characters with an image run trained with conditional classes")
