"""Watching a run while it trains: samples every `sample_every` steps, and TensorBoard when asked.

Snapshots are drawn with the EMA weights and the kind's few-step default (20 steps), as many as the kind's
`snapshot_n`, stored as the kind says (`Kind.snapshot`), saved as
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
from difflab.data.training_set import TrainingSet
from difflab.denoiser import Denoiser
from difflab.errors import UserError, option
from difflab.kinds import kind_for_info
from difflab.model import TrainedModel
from difflab.sampling import SamplingOptions, draw, resolve

PROGRESS = "progress"
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
        self.kind = kind_for_info(training_set.info)
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
        defaults = self.kind.defaults
        sampling = resolve(SamplingOptions(steps=min(SNAPSHOT_STEPS, len(ema.schedule))), model, defaults.sampling)
        n = defaults.snapshot_n
        labels = torch.arange(n) % self.info.num_classes if self.info.num_classes else None
        x = draw(model, n, sampling, labels=labels, seed=0, progress=False)
        snapshot = self.kind.snapshot(model, x)
        self.snapshots.append((step, snapshot))
        if self.out is not None:
            buf = io.BytesIO()
            np.save(buf, snapshot)
            atomic_write_bytes(self.out / PROGRESS / f"step-{step:09d}.npy", buf.getvalue())
        if self.writer is not None:
            self.kind.log_snapshot(self.writer, snapshot, step)
            self.writer.flush()

    def close(self) -> list[Path]:
        """Write the progress strip and GIF of every snapshot the run has (earlier calls' included)."""
        if self.writer is not None:
            self.writer.close()
        if self.out is None or not self.cfg.sample_every:
            return []
        return self.kind.write_progress(read_snapshots(self.out), self.out / "plots")


def read_snapshots(run_dir: Path) -> list[tuple[int, np.ndarray]]:
    """The saved snapshots of a run, in step order (unreadable files are skipped)."""
    out = []
    for path in sorted((run_dir / PROGRESS).glob("step-*.npy")):
        try:
            out.append((int(path.stem.removeprefix("step-")), np.load(path, allow_pickle=False)))
        except (ValueError, OSError):
            continue
    return out
