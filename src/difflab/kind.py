"""What a kind of data is (`Kind`) and what it sees of a trained run (`RunView`).

A kind (points, images, or one of your own) owns everything that depends on the data: reading a spec or an
array, the normalization, its defaults (`difflab.defaults.KindDefaults`), what a sample file is, snapshots
while training, how samples are judged, and which figures teach. The core (schedule, process, denoiser,
samplers, objectives, trainer) and the `Run` are shared and never ask which kind they hold. Kinds are found
through `difflab.kinds`; docs/api.md, "Adding a kind of data", walks through writing one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from difflab.config import TrainConfig
from difflab.data.training_set import DataInfo, DataSource, TrainingSet
from difflab.defaults import KindDefaults
from difflab.evaluation import Evaluation
from difflab.model import TrainedModel
from difflab.sampling import Sampling

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter


class RunView(Protocol):
    """The parts of a trained run (`difflab.Run`) that a kind's evaluation and figures, the report and the
    export use."""

    model: TrainedModel
    source: DataSource
    step: int
    path: Path | None
    kind: Kind

    @property
    def config(self) -> TrainConfig: ...

    @property
    def info(self) -> DataInfo: ...

    @property
    def class_names(self) -> list[str] | None: ...

    @property
    def metrics(self) -> list[dict[str, Any]]: ...

    def snapshots(self) -> list[tuple[int, np.ndarray]]: ...

    def data_copy(self) -> dict[str, np.ndarray]: ...

    def labels_for(self, n: int, label: int | str | None, *, every_class: bool = False) -> torch.Tensor | None: ...

    def class_index(self, label: int | str) -> int: ...

    def resolve(self, **sampling: Any) -> Sampling: ...

    def draw(
        self,
        n: int,
        sampling: Sampling,
        *,
        labels: torch.Tensor | None = None,
        seed: int = 0,
        callback: Any = None,
        progress: bool | None = None,
    ) -> torch.Tensor: ...

    def plot(self, out: str | Path | None = None, *, progress: bool | None = None, **options: Any) -> list[Path]: ...


class Kind(Protocol):
    """What a kind of data provides to training, sampling, evaluation, figures and export."""

    defaults: KindDefaults

    # --- data in ---
    def absolute_spec(self, spec: str) -> str:
        """The spec with any path in it made absolute (a run finds its data from any working directory)."""
        ...

    def is_builtin(self, spec: str) -> bool:
        """True for data the kind can draw or read again by name alone."""
        ...

    def load_spec(self, spec: str, cfg: TrainConfig) -> Any: ...

    def from_array(self, array: np.ndarray, labels: Any, columns: list[str] | None = None) -> Any:
        """Data given as an array (with labels, and column names when it came as a DataFrame)."""
        ...

    def training_set(self, data: Any, cfg: TrainConfig, spec: str) -> TrainingSet: ...

    def settle_config(self, cfg: TrainConfig, training_set: TrainingSet) -> TrainConfig:
        """The config as it will be recorded, once the data is known (e.g. a file's row count)."""
        ...

    def data_copy(self, data: Any) -> dict[str, np.ndarray]: ...

    def from_copy(self, arrays: dict[str, np.ndarray]) -> Any: ...

    # --- samples out ---
    def output(self, model: TrainedModel, x: torch.Tensor) -> np.ndarray:
        """Samples in model units → what `Run.sample` returns (data units, or images in [0, 1])."""
        ...

    def write_samples(self, samples: np.ndarray, path: Path, info: DataInfo) -> None: ...

    # --- while training ---
    def snapshot(self, model: TrainedModel, x: torch.Tensor) -> np.ndarray:
        """A progress snapshot as it is stored (RUN/progress/step-N.npy)."""
        ...

    def log_snapshot(self, writer: SummaryWriter, snapshot: np.ndarray, step: int) -> None: ...

    def write_progress(self, snapshots: list[tuple[int, np.ndarray]], folder: Path) -> list[Path]:
        """progress.png and progress.gif of the snapshots; the paths written (none without snapshots)."""
        ...

    # --- judging and teaching ---
    def evaluate(
        self,
        run: RunView,
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
        run: RunView,
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
        run: RunView,
        path: Path,
        sampling: Sampling,
        *,
        n: int | None,
        frames: int,
        label: int | str | None,
        seed: int,
        progress: bool | None,
    ) -> Path: ...

    def write(self, run: RunView, text: str, sampling: Sampling, *, seed: int, progress: bool | None) -> np.ndarray: ...
