"""A run directory: what it holds, who may write it, and how the trainer's state goes in and out of it.

config.json                  resolved TrainConfig, data facts (shape, normalization, classes), data source and
                             fingerprint, run format and difflab version
data.npz                     the training data, when the run keeps a copy (point data and arrays; not image sets)
metrics.jsonl                one JSON object per logged step, appended while training runs
checkpoints/latest           names the last complete checkpoint folder (replaced atomically)
checkpoints/step-NNNNNNNNN/  model.safetensors (raw weights), ema.safetensors (EMA weights, used for
                             sampling), state.pt (optimizer, step, every RNG state, data position;
                             weights-only loadable). The step is stored in all three and checked on load.
.lock                        held (flock) by the one process that trains into the run
eval.json, plots/, ...       written by evaluate, plot, animate and report

A `RunStore` is the trainer's persistence (`difflab.training_state.Store`) in a directory.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from difflab.checkpoint import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    commit_checkpoint,
    latest_checkpoint,
    load_state,
    load_weights_and_metadata,
    remove_leftovers,
    state_bytes,
    step_dir_name,
    weights_bytes,
)
from difflab.config import TrainConfig, make_config
from difflab.data.training_set import DataInfo, DataSource
from difflab.errors import UserError
from difflab.outputs import refuse_file_on_the_way
from difflab.training_state import Checkpoint
from difflab.version import __version__

CONFIG = "config.json"
CHECKPOINTS = "checkpoints"
MODEL = "model.safetensors"
EMA = "ema.safetensors"
STATE = "state.pt"
METRICS = "metrics.jsonl"
DATA = "data.npz"
LOCK = ".lock"
RUN_FORMAT = "difflab-run"
FORMAT_VERSION = 2
STATE_FORMAT = "difflab-train-state"


# --- config.json ---


@dataclass
class RunRecord:
    """What config.json holds: the config, the data facts and where the data came from."""

    cfg: TrainConfig
    info: DataInfo
    source: DataSource

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": RUN_FORMAT,
            "format_version": FORMAT_VERSION,
            "difflab_version": __version__,
            "config": self.cfg.to_dict(),
            "data": self.info.to_dict(),
            "source": self.source.to_dict(),
        }


def check_format(path: Path, raw: Any) -> None:
    """Refuse, with the reason, a config.json from another program or from a newer or older run format."""
    if not isinstance(raw, dict) or "config" not in raw:
        raise UserError(f"{path}: not a difflab run config")
    written_by = raw.get("difflab_version", "an unknown version")
    version = raw.get("format_version")
    if raw.get("format") != RUN_FORMAT or not isinstance(version, int):
        raise UserError(
            f"{path}: written by difflab {written_by} before run format {FORMAT_VERSION}; "
            f"this difflab {__version__} cannot load it (retrain, or use the difflab that wrote it)"
        )
    if version > FORMAT_VERSION:
        raise UserError(
            f"{path}: written by a newer difflab {written_by} (run format {version}); this difflab {__version__} "
            f"reads run format {FORMAT_VERSION}: upgrade difflab"
        )
    if version < FORMAT_VERSION:
        raise UserError(
            f"{path}: written by difflab {written_by} in the older run format {version}; this difflab "
            f"{__version__} reads run format {FORMAT_VERSION} only (retrain, or use the difflab that wrote it)"
        )


def read_run_record(run_dir: Path) -> RunRecord:
    """Read and validate config.json of a run directory."""
    path = run_dir / CONFIG
    if run_dir.exists() and not run_dir.is_dir():
        raise UserError(f"{run_dir}: is a file, not a run directory")
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: run directory not found")
    if not path.is_file():
        raise UserError(f"{run_dir}: not a run directory (no {CONFIG})")
    try:
        raw = json.loads(path.read_bytes().decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError, OSError) as e:
        raise UserError(f"{path}: corrupt run config ({type(e).__name__}: {str(e)[:120]})") from None
    check_format(path, raw)
    try:
        cfg = make_config(raw["config"])
        info = DataInfo.from_dict(raw["data"])
        source = DataSource.from_dict(raw["source"])
    except UserError as e:
        raise UserError(f"{path}: corrupt run config ({e})") from None
    except (KeyError, TypeError, ValueError, OverflowError, AttributeError) as e:
        raise UserError(f"{path}: corrupt run config ({type(e).__name__}: {str(e)[:120]})") from None
    return RunRecord(cfg, info, source)


# --- checkpoints ---


def write_checkpoint(run_dir: Path, ckpt: Checkpoint) -> Path:
    """Commit a checkpoint atomically as a whole (see `commit_checkpoint`); returns its folder."""
    stamp = {"format": STATE_FORMAT, "step": str(ckpt.step)}
    files = {
        MODEL: weights_bytes(ckpt.model, stamp),
        EMA: weights_bytes(ckpt.ema, stamp),
        STATE: state_bytes({**ckpt.state, "format": STATE_FORMAT, "step": ckpt.step}),
    }
    return commit_checkpoint(run_dir / CHECKPOINTS, ckpt.step, files)


def latest_checkpoint_dir(run_dir: Path) -> Path | None:
    """The folder of the run's last complete checkpoint, or None if it has none yet."""
    return latest_checkpoint(run_dir / CHECKPOINTS)


def _checked_weights(folder: Path, name: str, step: int) -> dict[str, torch.Tensor]:
    weights, meta = load_weights_and_metadata(folder / name)
    if meta.get("format") != STATE_FORMAT:
        raise UserError(f"{folder / name}: foreign weights file (not written by difflab train)")
    if meta.get("step") != str(step):
        raise UserError(f"{folder}: inconsistent checkpoint ({name} is from step {meta.get('step')}, not {step})")
    return weights


def read_checkpoint(run_dir: Path) -> Checkpoint | None:
    """Load and cross-check the run's last checkpoint; None if it has none yet. Never runs code."""
    folder = latest_checkpoint_dir(run_dir)
    if folder is None:
        return None
    state = load_state(folder / STATE)
    if state.get("format") != STATE_FORMAT or not isinstance(state.get("step"), int):
        raise UserError(f"{folder / STATE}: foreign training state (not written by difflab train)")
    step = state["step"]
    if folder.name != step_dir_name(step):
        raise UserError(f"{folder}: inconsistent checkpoint ({STATE} is from step {step})")
    return Checkpoint(step, _checked_weights(folder, MODEL, step), _checked_weights(folder, EMA, step), state)


def read_sampling_weights(run_dir: Path, *, ema: bool = True) -> tuple[dict[str, torch.Tensor], int]:
    """The (EMA) weights of the last checkpoint and its step, for sampling (the training state is not read)."""
    folder = latest_checkpoint_dir(run_dir)
    if folder is None:
        raise UserError(f"{run_dir}: no checkpoint yet (training has not reached its first checkpoint)")
    step = int(folder.name.removeprefix("step-"))
    return _checked_weights(folder, EMA if ema else MODEL, step), step


# --- the data copy ---


def write_data(run_dir: Path, arrays: dict[str, np.ndarray]) -> None:
    """Save the run's copy of its training data (numbers only, no pickles), atomically."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(run_dir / DATA, buf.getvalue())


def read_data(run_dir: Path) -> dict[str, np.ndarray]:
    """The run's copy of its training data; a missing or damaged copy is a UserError."""
    path = run_dir / DATA
    if not path.is_file():
        raise UserError(f"{path}: the run's copy of its training data is missing")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError) as e:
        raise UserError(f"{path}: damaged copy of the training data ({str(e).splitlines()[0][:100]})") from None


# --- metrics.jsonl ---


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The logged rows; a damaged line is a UserError naming it."""
    path = run_dir / METRICS
    if not path.exists():
        return []
    rows = []
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read the metrics log ({e})") from None
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            raise UserError(f"{path}: line {n} is not JSON; the metrics log is damaged") from None
        if not isinstance(row, dict) or not isinstance(row.get("step"), int) or not isinstance(row.get("loss"), float):
            raise UserError(f"{path}: line {n} has no integer step and numeric loss; the metrics log is damaged")
        rows.append(row)
    return rows


# --- persistence for the trainer ---


class RunLock:
    """An exclusive flock on RUN/.lock: one writer per run; the kernel releases it when the holder dies."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.fd: int | None = None
        self.created = False

    def acquire(self) -> None:
        path = self.run_dir / LOCK
        refuse_file_on_the_way(self.run_dir)
        try:
            self.created = not self.run_dir.exists()
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise UserError(f"cannot write to {self.run_dir} ({e.strerror or e}); nothing was changed") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise UserError(
                f"{self.run_dir} is being trained by another difflab process (pid {holder}); wait for it to finish "
                "or stop it, then run again"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        """Unlock; a folder this lock created and nothing else wrote to (training failed first) is removed."""
        if self.fd is None:
            return
        if self.created and [p.name for p in self.run_dir.iterdir()] == [LOCK]:
            (self.run_dir / LOCK).unlink()
            self.run_dir.rmdir()
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


def write_run(
    target: Path,
    record: RunRecord,
    data: dict[str, np.ndarray] | None,
    checkpoint: Checkpoint,
    metrics: list[dict[str, Any]],
) -> None:
    """Write a run trained in memory as a run directory (config, data copy, checkpoint, log), under its lock."""
    if (target / CONFIG).exists():
        raise UserError(f"{target} already holds a run; save into a new folder")
    lock = RunLock(target)
    lock.acquire()
    try:
        store = RunStore(target, record, data)
        store.begin()
        store.save(checkpoint)
        for row in metrics:
            store.log(row)
    finally:
        lock.release()


class RunStore:
    """The trainer's persistence in a run directory (rank 0 only; the caller holds the `RunLock`)."""

    def __init__(self, run_dir: Path, record: RunRecord, data: dict[str, np.ndarray] | None = None) -> None:
        self.run_dir = run_dir
        self.record = record
        self.data = data

    def begin(self) -> None:
        """Write config.json (and the data copy, once) before any work that could be lost."""
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            remove_leftovers(self.run_dir)
            remove_leftovers(self.run_dir / CHECKPOINTS)
            if self.data is not None and not (self.run_dir / DATA).exists():
                write_data(self.run_dir, self.data)
            atomic_write_json(self.run_dir / CONFIG, self.record.to_dict())
        except OSError as e:
            raise UserError(f"cannot write to {self.run_dir} ({e.strerror or e}); nothing was changed") from None

    def save(self, ckpt: Checkpoint) -> None:
        write_checkpoint(self.run_dir, ckpt)

    def restore(self) -> Checkpoint | None:
        """The last checkpoint, with the metrics log cut back to its step (rows after it will be logged again)."""
        ckpt = read_checkpoint(self.run_dir)
        rows = read_metrics(self.run_dir)
        kept = [r for r in rows if r["step"] <= (ckpt.step if ckpt else 0)]
        if len(kept) != len(rows):
            atomic_write_text(self.run_dir / METRICS, "".join(json.dumps(r) + "\n" for r in kept))
        return ckpt

    def log(self, row: dict[str, Any]) -> None:
        """Append one row to metrics.jsonl now, so the log lives while training runs."""
        with open(self.run_dir / METRICS, "a") as f:
            f.write(json.dumps(row) + "\n")
