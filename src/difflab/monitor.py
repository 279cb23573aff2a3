"""Watching a run while it trains: samples every `sample_every` steps, and TensorBoard when asked.

Snapshots are drawn with the EMA weights and the kind's few-step default (20 steps), saved as
RUN/progress/step-NNNNNNNNN.npy the moment they are drawn (so a resumed run keeps its earlier ones), and
turned into RUN/plots/progress.png (a strip) and progress.gif when training ends. With `tensorboard`, loss,
learning rate, steps/s and each snapshot's figure go to RUN/tensorboard (`tensorboard --logdir RUN`).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from difflab.checkpoint import atomic_write_bytes
from difflab.config import TrainConfig
from difflab.data.training_set import DataInfo, TrainingSet
from difflab.denoiser import Denoiser
from difflab.errors import UserError, option
from difflab.outputs import prepare_folder
from difflab.run import TrainedModel
from difflab.sampling import SamplingOptions, draw, resolve

PROGRESS = "progress"
#: Points per snapshot, and images per snapshot.
SNAPSHOT_POINTS = 1000
SNAPSHOT_IMAGES = 16
SNAPSHOT_STEPS = 20


def require_tensorboard() -> Any:
    """torch's SummaryWriter, or a UserError saying how to install it (checked before training starts)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError(
            f"{option('tensorboard')} needs the tensorboard package: pip install 'difflab[tensorboard]'"
        ) from None
    return SummaryWriter


class TrainingMonitor:
    """The trainer's hooks on rank 0: `logged(row)` after each logged interval, `sampled(step, ema)` on schedule."""

    def __init__(self, cfg: TrainConfig, training_set: TrainingSet, out: Path | None) -> None:
        self.cfg = cfg
        self.info = training_set.info
        self.out = out
        self.snapshots: list[tuple[int, np.ndarray]] = []
        self.writer = None
        if cfg.tensorboard:
            if out is None:
                raise UserError(f"{option('tensorboard')} writes into the run directory; give the run an output folder")
            self.writer = require_tensorboard()(log_dir=str(out / "tensorboard"))

    def logged(self, row: dict[str, Any]) -> None:
        if self.writer is not None:
            for key in ("loss", "lr", "steps_per_s"):
                self.writer.add_scalar(f"train/{key}", row[key], row["step"])
            self.writer.flush()

    def sampled(self, step: int, ema: Denoiser) -> None:
        """Draw a snapshot with the EMA weights, keep it, and save it at once."""
        model = TrainedModel(self.cfg, self.info, ema)
        sampling = resolve(SamplingOptions(steps=min(SNAPSHOT_STEPS, len(ema.schedule))), model)
        n = SNAPSHOT_IMAGES if self.info.is_image else SNAPSHOT_POINTS
        labels = torch.arange(n) % self.info.num_classes if self.info.num_classes else None
        x = draw(model, n, sampling, labels=labels, seed=0, progress=False)
        snapshot = snapshot_array(model, x)
        self.snapshots.append((step, snapshot))
        if self.out is not None:
            buf = io.BytesIO()
            np.save(buf, snapshot)
            atomic_write_bytes(self.out / PROGRESS / f"step-{step:09d}.npy", buf.getvalue())
        if self.writer is not None:
            if self.info.is_image:
                self.writer.add_images("samples", torch.as_tensor(snapshot), step, dataformats="NCHW")
            else:
                from difflab.points.plots import snapshot_figure

                self.writer.add_figure("samples", snapshot_figure(snapshot, f"step {step}"), step)
            self.writer.flush()

    def close(self) -> list[Path]:
        """Write the progress strip and GIF of every snapshot the run has (earlier calls' included)."""
        if self.writer is not None:
            self.writer.close()
        if self.out is None or not self.cfg.sample_every:
            return []
        return write_progress(self.info, read_snapshots(self.out), self.out / "plots")


def snapshot_array(model: TrainedModel, x: torch.Tensor) -> np.ndarray:
    """Points in data units, or uint8 images."""
    if model.info.is_image:
        return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    return model.to_data_units(x).astype(np.float32)


def read_snapshots(run_dir: Path) -> list[tuple[int, np.ndarray]]:
    """The saved snapshots of a run, in step order (unreadable files are skipped)."""
    out = []
    for path in sorted((run_dir / PROGRESS).glob("step-*.npy")):
        try:
            out.append((int(path.stem.removeprefix("step-")), np.load(path, allow_pickle=False)))
        except (ValueError, OSError):
            continue
    return out


#: At most this many snapshots in the strip (evenly chosen, the last always shown); the GIF shows them all.
STRIP_PANELS = 8


def write_progress(info: DataInfo, snapshots: list[tuple[int, np.ndarray]], folder: Path) -> list[Path]:
    """progress.png (samples at a few steps of training) and progress.gif (at every snapshot)."""
    if not snapshots:
        return []
    prepare_folder(folder)
    keep = sorted(set(np.linspace(0, len(snapshots) - 1, min(STRIP_PANELS, len(snapshots))).round().astype(int)))
    shown = [snapshots[k] for k in keep]
    strip, gif = folder / "progress.png", folder / "progress.gif"
    if info.is_image:
        from difflab.images.figures import write_image_progress

        write_image_progress(shown, snapshots, strip, gif)
    else:
        from difflab.points.plots import plot_snapshots, write_gif

        plot_snapshots([(f"step {s}", x) for s, x in shown], strip, title="samples during training (EMA weights)")
        last = snapshots[-1][1]
        lo, hi = np.percentile(last, [0.5, 99.5], axis=0)
        pad = 0.15 * (hi - lo)
        dims = [0, 1] if last.shape[1] > 1 else [0, 0]
        limits = np.stack([lo[dims] - pad[dims], hi[dims] + pad[dims]], axis=1)
        write_gif([(f"training step {s}", x) for s, x in snapshots], gif, limits=limits)
    return [strip, gif]
