"""The image kind: uint8 images (N, C, H, W) scaled to [-1, 1]; image sets are read from where they live."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from difflab.checkpoint import atomic_write_bytes
from difflab.config import TrainConfig
from difflab.data.files import labels_from
from difflab.data.image_source import load_image_set
from difflab.data.images import ImageData
from difflab.data.training_set import DataInfo, DataSource, TrainingSet, fingerprint
from difflab.errors import UserError
from difflab.images.defaults import IMAGES
from difflab.images.pixels import PIXEL_SCALER, tile, to_uint8, to_unit, unit_to_uint8
from difflab.images.sets import image_copy, split
from difflab.outputs import save_png

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

    from difflab.evaluation import Evaluation
    from difflab.kind import RunView
    from difflab.model import TrainedModel
    from difflab.sampling import Sampling


class ImageKind:
    """Images (N, C, H, W); see `difflab.kind.Kind`.

    An image set given by name or path is not copied into the run (EMNIST is ~90 MB): the run records its
    absolute path and a fingerprint of the training images, and evaluation or figures that need the images
    again check the fingerprint and say so when the set changed or moved. Arrays are copied into the run.
    """

    defaults = IMAGES

    def absolute_spec(self, spec: str) -> str:
        for prefix in self.defaults.spec_prefixes:
            rest = spec.removeprefix(prefix)
            if spec.startswith(prefix) and rest:
                return prefix + str(Path(rest).expanduser().absolute())
        return spec

    def is_builtin(self, spec: str) -> bool:
        return spec in self.defaults.spec_names

    def load_spec(self, spec: str, cfg: TrainConfig) -> ImageData:
        return load_image_set(spec, "train")

    def from_array(self, array: np.ndarray, labels: Any, columns: list[str] | None = None) -> ImageData:
        """uint8 images, or floats in [0, 1]; labels optional (one class "all" without them)."""
        if array.ndim != 4:
            raise UserError(f"images must be (N, C, H, W), got shape {array.shape}")
        if array.dtype == np.uint8:
            pixels = array
        elif array.dtype.kind == "f":
            if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
                raise UserError("float images must hold finite values in [0, 1] (or pass uint8 0..255)")
            pixels = unit_to_uint8(array)
        else:
            raise UserError(f"images must be uint8 or floats in [0, 1], got dtype {array.dtype}")
        if labels is None:
            codes, names = np.zeros(len(pixels), dtype=np.int64), ["all"]
        else:
            codes, names = labels_from(labels, len(pixels))
        if len(pixels) < 2:
            raise UserError("training needs at least 2 images")
        return ImageData(np.ascontiguousarray(pixels), codes, names)

    def training_set(self, data: ImageData, cfg: TrainConfig, spec: str) -> TrainingSet:
        """Pixels scaled to [-1, 1]; an array trains on its training part (the rest is held out for evaluation)."""
        stored = spec == "array"
        train = split(data)[0] if stored else data
        info = DataInfo(train.shape, PIXEL_SCALER, train.class_names if cfg.conditional else None, self.defaults.name)
        source = DataSource(spec, len(data), fingerprint(data.images, data.labels), stored=stored)
        x = torch.as_tensor(PIXEL_SCALER.transform(train.images.astype(np.float32)), dtype=torch.float32)
        return TrainingSet(x, train.labels, info, source)

    def settle_config(self, cfg: TrainConfig, training_set: TrainingSet) -> TrainConfig:
        return cfg.replace(n_data=training_set.source.n_items)

    def data_copy(self, data: ImageData) -> dict[str, np.ndarray]:
        return {"images": data.images, "labels": data.labels, "class_names": np.array(data.class_names, dtype=str)}

    def from_copy(self, arrays: dict[str, np.ndarray]) -> ImageData:
        return image_copy(arrays)

    def output(self, model: TrainedModel, x: torch.Tensor) -> np.ndarray:
        """Floats in [0, 1]."""
        return to_unit(x)

    def write_samples(self, samples: np.ndarray, path: Path, info: DataInfo) -> None:
        """.npy: uint8 (N, C, H, W); .png: a square grid."""
        images = unit_to_uint8(samples)
        if path.suffix.lower() == ".png":
            save_png(tile(images, int(np.ceil(np.sqrt(len(images))))), path)
            return
        buf = io.BytesIO()
        np.save(buf, images)
        atomic_write_bytes(path, buf.getvalue())

    def snapshot(self, model: TrainedModel, x: torch.Tensor) -> np.ndarray:
        """uint8 images."""
        return to_uint8(x)

    def log_snapshot(self, writer: SummaryWriter, snapshot: np.ndarray, step: int) -> None:
        writer.add_images("samples", torch.as_tensor(snapshot), step, dataformats="NCHW")

    def write_progress(self, snapshots: list[tuple[int, np.ndarray]], folder: Path) -> list[Path]:
        from difflab.images.figures import write_progress

        return write_progress(snapshots, folder)

    def evaluate(self, run: RunView, sampling: Sampling, **options: Any) -> Evaluation:
        from difflab.images.evaluation import evaluate

        return evaluate(run, sampling, **options)

    def plot(self, run: RunView, folder: Path, sampling: Sampling, **options: Any) -> list[Path]:
        from difflab.images.figures import plot

        return plot(run, folder, sampling, **options)

    def animate(self, run: RunView, path: Path, sampling: Sampling, **options: Any) -> Path:
        from difflab.images.figures import animate

        return animate(run, path, sampling, **options)

    def write(self, run: RunView, text: str, sampling: Sampling, **options: Any) -> np.ndarray:
        from difflab.images.figures import render_text

        return render_text(run, text, sampling, **options)
