"""A run directory: what it holds, and how to rebuild the trained denoiser from it.

config.json                  resolved TrainConfig + data facts + run format and difflab version
metrics.jsonl                one JSON object per logged step, up to the last checkpoint (for people and plots)
checkpoints/latest           names the last complete checkpoint folder (replaced atomically)
checkpoints/step-NNNNNNNNN/  model.safetensors (raw weights), ema.safetensors (EMA weights, used for
                             sampling), state.pt (optimizer, step, every RNG state, data position, loss log;
                             weights-only loadable). The step is stored in all three and checked on load.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from difflab import __version__
from difflab.checkpoint import (
    atomic_write_json,
    commit_checkpoint,
    latest_checkpoint,
    load_state,
    load_weights_and_metadata,
    state_bytes,
    step_dir_name,
    weights_bytes,
)
from difflab.config import TrainConfig, make_config
from difflab.data.normalize import MinMaxScaler
from difflab.denoiser import Denoiser, DenoiserFn, Guided, Unconditional
from difflab.errors import UserError
from difflab.learned_schedule import LearnedScheduleModel
from difflab.models.mlp import MLP
from difflab.models.unet import SIZE_MULTIPLE, UNet
from difflab.schedule import Schedule, make_schedule

CONFIG = "config.json"
CHECKPOINTS = "checkpoints"
MODEL = "model.safetensors"
EMA = "ema.safetensors"
STATE = "state.pt"
METRICS = "metrics.jsonl"
RUN_FORMAT = "difflab-run"
FORMAT_VERSION = 1
STATE_FORMAT = "difflab-train-state"


@dataclass
class DataInfo:
    """Facts about the training data a run needs to rebuild its model and outputs.

    `shape` is one item's shape: (D,) for points, (C, H, W) for images. `scaler` maps data units
    to the [-1, 1] range the model sees (per column for points, one range for pixels).
    """

    shape: tuple[int, ...]
    scaler: MinMaxScaler
    class_names: list[str] | None

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.class_names else 0

    @property
    def dim(self) -> int:
        """Number of values per item."""
        return int(np.prod(self.shape))

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "scaler": self.scaler.to_dict(), "class_names": self.class_names}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataInfo:
        return cls(tuple(int(k) for k in d["shape"]), MinMaxScaler.from_dict(d["scaler"]), d.get("class_names"))


def _unet(cfg: TrainConfig, info: DataInfo, num_classes: int, out_factor: int) -> UNet:
    """The U-Net for (C, H, W) items; H and W must survive two halvings."""
    if len(info.shape) != 3:
        raise UserError(f"--model unet needs images (C, H, W); {cfg.data} has items of shape {info.shape}")
    c, h, w = info.shape
    if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
        raise UserError(f"--model unet needs height and width divisible by {SIZE_MULTIPLE}; {cfg.data} is {h}×{w}")
    return UNet(c, size=cfg.unet_size, num_classes=num_classes, out_channels=c * out_factor)


def build_denoiser(cfg: TrainConfig, info: DataInfo) -> Denoiser:
    """Network + schedule + parameterization for a config.

    A learned schedule's γ lives in the model (`LearnedScheduleModel`); its schedule here is that of the
    freshly initialized γ, and `refresh_schedule` must follow every change of the weights.
    """
    num_classes = info.num_classes if cfg.conditional else 0
    out_factor = 2 if cfg.learned_variance else 1
    if cfg.model == "unet":
        net: nn.Module = _unet(cfg, info, num_classes, out_factor)
    else:
        net = MLP(
            info.dim,
            hidden=cfg.hidden,
            depth=cfg.depth,
            time_embedding=cfg.time_embedding,
            fourier_features=cfg.fourier_features,
            num_classes=num_classes,
            out_dim=info.dim * out_factor,
        )
    if cfg.schedule == "learned":
        model = LearnedScheduleModel(net)
        return Denoiser(model, model.schedule(cfg.timesteps), cfg.target, clip=cfg.clip)
    schedule = make_schedule(cfg.schedule, cfg.timesteps)
    return Denoiser(net, schedule, cfg.target, learned_variance=cfg.learned_variance, clip=cfg.clip)


def refresh_schedule(denoiser: Denoiser) -> None:
    """Discretize a learned schedule from the current γ weights (after loading or training them); no-op otherwise."""
    if isinstance(denoiser.model, LearnedScheduleModel):
        denoiser.schedule = denoiser.model.schedule(len(denoiser.schedule))


def write_run_config(run_dir: Path, cfg: TrainConfig, info: DataInfo) -> None:
    """Write config.json atomically, stamped with the run format and the difflab version that wrote it."""
    atomic_write_json(
        run_dir / CONFIG,
        {
            "format": RUN_FORMAT,
            "format_version": FORMAT_VERSION,
            "difflab_version": __version__,
            "config": cfg.to_dict(),
            "data": info.to_dict(),
        },
    )


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
            f"{__version__} reads run format {FORMAT_VERSION} only"
        )


def read_run_config(run_dir: Path) -> tuple[TrainConfig, DataInfo]:
    """Read and validate config.json of a run directory."""
    path = run_dir / CONFIG
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: run directory not found")
    if not path.is_file():
        raise UserError(f"{run_dir}: not a run directory (no {CONFIG})")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: corrupt run config ({type(e).__name__}: {e})") from None
    check_format(path, raw)
    try:
        cfg = make_config(raw["config"])
        info = DataInfo.from_dict(raw["data"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise UserError(f"{path}: corrupt run config ({type(e).__name__}: {e})") from None
    return cfg, info


@dataclass
class LoadedRun:
    """A trained run ready to sample from."""

    cfg: TrainConfig
    info: DataInfo
    denoiser: Denoiser

    @property
    def schedule(self) -> Schedule:
        return self.denoiser.schedule

    def bound(self, labels: torch.Tensor | None = None, guidance: float = 1.0) -> DenoiserFn:
        """A sampler-ready denoiser: unconditional, or guided towards `labels`."""
        if not self.cfg.conditional:
            if labels is not None:
                raise UserError("this run was trained without classes; drop --class")
            return Unconditional(self.denoiser)
        return Guided(self.denoiser, labels, guidance if labels is not None else 0.0, self.info.num_classes)

    def to_data_units(self, x: torch.Tensor) -> np.ndarray:
        """Invert the stored normalization."""
        return self.info.scaler.inverse(x.double().cpu().numpy())


@dataclass
class Checkpoint:
    """Everything a resumed run needs besides its config: weights, EMA weights and the training state."""

    step: int
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor]
    state: dict[str, Any]


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


def load_run(run_dir: Path, *, ema: bool = True) -> LoadedRun:
    """Rebuild the denoiser of a run from its config and the (EMA) weights of its last checkpoint."""
    cfg, info = read_run_config(run_dir)
    denoiser = build_denoiser(cfg, info)
    folder = latest_checkpoint_dir(run_dir)
    if folder is None:
        raise UserError(f"{run_dir}: no checkpoint yet (training has not reached --checkpoint-every steps)")
    name = EMA if ema else MODEL
    weights = _checked_weights(folder, name, int(folder.name.removeprefix("step-")))
    try:
        denoiser.model.load_state_dict(weights)
    except RuntimeError as e:
        raise UserError(f"{run_dir}: weights do not match the config ({str(e).splitlines()[0]})") from None
    refresh_schedule(denoiser)
    denoiser.eval()
    return LoadedRun(cfg, info, denoiser)
