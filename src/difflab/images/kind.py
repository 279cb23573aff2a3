"""The image kind: uint8 images (N, C, H, W) scaled to [-1, 1]; image sets are read from where they live."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from difflab.checkpoint import atomic_write_bytes
from difflab.config import IMAGE_DEFAULTS, TrainConfig
from difflab.data.image_source import SPLIT_SEED, TEST_FRACTION, load_image_set
from difflab.data.images import ImageData, stratified_split
from difflab.data.training_set import DataInfo, DataSource, TrainingSet, fingerprint
from difflab.errors import UserError
from difflab.images.pixels import PIXEL_SCALER, save_png, tile, unit_to_uint8
from difflab.points.kind import labels_from

if TYPE_CHECKING:
    from difflab.api import Run
    from difflab.evaluation import Evaluation
    from difflab.run import TrainedModel
    from difflab.sampling import Sampling

BUILTIN_IMAGE_SETS = ("mnist5k", "digits")


def split(data: ImageData) -> tuple[ImageData, ImageData]:
    """The fixed stratified train/test split of an image set without official parts (10% held out)."""
    train, test = stratified_split(data.labels, TEST_FRACTION, SPLIT_SEED)
    return data.subset(train), data.subset(test)


class ImageKind:
    """Images (N, C, H, W); see `difflab.kinds.Kind`.

    An image set given by name or path is not copied into the run (EMNIST is ~90 MB): the run records its
    absolute path and a fingerprint of the training images, and evaluation or figures that need the images
    again check the fingerprint and say so when the set changed or moved. Arrays are copied into the run.
    """

    name = "images"
    item_name = "images"
    sample_suffixes = (".npy", ".png")

    def is_builtin(self, spec: str) -> bool:
        return spec in BUILTIN_IMAGE_SETS

    def defaults(self, spec: str) -> Mapping[str, Any]:
        return IMAGE_DEFAULTS

    def load_spec(self, spec: str, cfg: TrainConfig) -> ImageData:
        return load_image_set(spec, "train")

    def from_array(self, array: np.ndarray, labels: Any) -> ImageData:
        """uint8 images, or floats in [0, 1]; labels optional (one class "all" without them)."""
        if array.ndim != 4:
            raise UserError(f"images must be (N, C, H, W), got shape {array.shape}")
        if array.dtype == np.uint8:
            pixels = array
        elif array.dtype.kind == "f":
            if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
                raise UserError("float images must hold finite values in [0, 1] (or pass uint8 0..255)")
            pixels = np.round(array * 255.0).astype(np.uint8)
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
        info = DataInfo(train.shape, PIXEL_SCALER, train.class_names if cfg.conditional else None)
        source = DataSource(spec, len(data), fingerprint(data.images, data.labels), stored=stored)
        x = torch.as_tensor(PIXEL_SCALER.transform(train.images.astype(np.float32)), dtype=torch.float32)
        return TrainingSet(x, train.labels, info, source)

    def settle_config(self, cfg: TrainConfig, training_set: TrainingSet) -> TrainConfig:
        return cfg.replace(n_data=training_set.source.n_items)

    def data_copy(self, data: ImageData) -> dict[str, np.ndarray]:
        return {"images": data.images, "labels": data.labels, "class_names": np.array(data.class_names, dtype=str)}

    def from_copy(self, arrays: dict[str, np.ndarray]) -> ImageData:
        try:
            return ImageData(
                arrays["images"], arrays["labels"].astype(np.int64), [str(s) for s in arrays["class_names"]]
            )
        except (KeyError, ValueError, TypeError) as e:
            raise UserError(f"the run's image copy is damaged ({e})") from None

    def image_sets(self, run: Run) -> tuple[ImageData, ImageData]:
        """(train, test) images of a run, checked against the fingerprint recorded when it trained."""
        source = run.source
        if source.stored:
            data = self.from_copy(run.data_copy())
            found = fingerprint(data.images, data.labels)
            train, test = split(data)
        else:
            train, test = load_image_set(source.spec, "train"), load_image_set(source.spec, "test")
            found = fingerprint(train.images, train.labels)
        if found != source.fingerprint:
            raise UserError(
                f"{source.spec} no longer holds the images this run trained on (fingerprint differs); "
                "evaluation and figures need the same images"
            )
        return train, test

    def output(self, model: TrainedModel, x: torch.Tensor) -> np.ndarray:
        """Floats in [0, 1]."""
        return ((x.detach().float().cpu().clamp(-1, 1) + 1) / 2).numpy()

    def write_samples(self, samples: np.ndarray, path: Path) -> None:
        """.npy: uint8 (N, C, H, W); .png: a square grid."""
        images = unit_to_uint8(samples)
        if path.suffix.lower() == ".png":
            save_png(tile(images, int(np.ceil(np.sqrt(len(images))))), path)
            return
        buf = io.BytesIO()
        np.save(buf, images)
        atomic_write_bytes(path, buf.getvalue())

    def evaluate(self, run: Run, sampling: Sampling, **options: Any) -> Evaluation:
        from difflab.images.evaluation import evaluate

        return evaluate(run, sampling, **options)

    def plot(self, run: Run, folder: Path, sampling: Sampling, **options: Any) -> list[Path]:
        from difflab.images.figures import plot

        return plot(run, folder, sampling, **options)

    def animate(self, run: Run, path: Path, sampling: Sampling, **options: Any) -> Path:
        from difflab.images.figures import animate

        return animate(run, path, sampling, **options)

    def write(self, run: Run, text: str, sampling: Sampling, **options: Any) -> np.ndarray:
        from difflab.images.figures import render_text

        return render_text(run, text, sampling, **options)
