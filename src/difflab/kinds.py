"""Points and images behind one interface, chosen once from the data or the run.

Everything that differs between the two kinds of data (loading, normalization, what a sample file is, how
samples are judged, which figures teach) lives in `points.kind.PointKind` and `images.kind.ImageKind`;
the core (schedule, process, denoiser, samplers, objectives) and the `Run` are shared. Importing this module
imports neither kind's heavy parts: sampling an image run never loads the trainer.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from difflab.config import TrainConfig
from difflab.data.training_set import DataInfo, TrainingSet
from difflab.errors import UserError

if TYPE_CHECKING:
    from difflab.api import Run
    from difflab.evaluation import Evaluation
    from difflab.run import TrainedModel
    from difflab.sampling import Sampling


class Kind(Protocol):
    """What a kind of data provides to training, sampling, evaluation and figures."""

    name: str  # "points" or "images"
    item_name: str  # "points", "images": for messages
    sample_suffixes: tuple[str, ...]  # what `difflab sample --out` may write

    def is_builtin(self, spec: str) -> bool: ...

    def defaults(self, spec: str) -> Mapping[str, Any]:
        """Training options whose default for this data differs from `TrainConfig`'s (the user's values win)."""
        ...

    def load_spec(self, spec: str, cfg: TrainConfig) -> Any: ...

    def from_array(self, array: np.ndarray, labels: Any) -> Any: ...

    def training_set(self, data: Any, cfg: TrainConfig, spec: str) -> TrainingSet: ...

    def settle_config(self, cfg: TrainConfig, training_set: TrainingSet) -> TrainConfig: ...

    def data_copy(self, data: Any) -> dict[str, np.ndarray]: ...

    def from_copy(self, arrays: dict[str, np.ndarray]) -> Any: ...

    def output(self, model: TrainedModel, x: torch.Tensor) -> np.ndarray: ...

    def write_samples(self, samples: np.ndarray, path: Path) -> None: ...

    def evaluate(
        self,
        run: Run,
        sampling: Sampling,
        *,
        n: int | None,
        draws: int | None,
        label: int | str | None,
        nll: bool,
        seed: int,
        progress: bool | None,
    ) -> Evaluation: ...

    def plot(
        self,
        run: Run,
        folder: Path,
        sampling: Sampling,
        *,
        n: int | None,
        label: int | str | None,
        seed: int,
        progress: bool | None,
    ) -> list[Path]: ...

    def animate(
        self,
        run: Run,
        path: Path,
        sampling: Sampling,
        *,
        n: int | None,
        frames: int,
        label: int | str | None,
        seed: int,
        progress: bool | None,
    ) -> Path: ...

    def write(self, run: Run, text: str, sampling: Sampling, *, seed: int, progress: bool | None) -> np.ndarray: ...


def points() -> Kind:
    from difflab.points.kind import PointKind

    return PointKind()


def images() -> Kind:
    from difflab.images.kind import ImageKind

    return ImageKind()


def kind_for_info(info: DataInfo) -> Kind:
    """The kind of a trained run, from its item shape."""
    return images() if info.is_image else points()


def kind_for_spec(spec: str) -> Kind:
    """The kind a data spec names: image sets by name or prefix, everything else points."""
    from difflab.data.image_source import is_image_spec

    return images() if is_image_spec(spec) else points()


def kind_for_array(array: np.ndarray) -> Kind:
    """Points for (N, D) or (N,), images for (N, C, H, W)."""
    if array.ndim in (1, 2):
        return points()
    if array.ndim == 4:
        return images()
    raise UserError(f"expected points (N, D) or images (N, C, H, W), got an array of shape {array.shape}")
