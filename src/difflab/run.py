"""A run directory: what it holds, and how to rebuild the trained denoiser from it.

config.json        resolved TrainConfig + data facts (dimension, normalization, classes) + version
model.safetensors  raw weights at the last checkpoint
ema.safetensors    EMA weights (used for sampling)
state.pt           optimizer, step, RNG state (weights-only loadable)
metrics.jsonl      one JSON object per logged step
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
from difflab.checkpoint import atomic_write_json, load_weights
from difflab.config import TrainConfig, make_config
from difflab.data.normalize import MinMaxScaler
from difflab.denoiser import Denoiser, DenoiserFn, Guided, Unconditional
from difflab.errors import UserError
from difflab.models.mlp import MLP
from difflab.models.unet import SIZE_MULTIPLE, UNet
from difflab.schedule import Schedule, make_schedule

CONFIG = "config.json"
MODEL = "model.safetensors"
EMA = "ema.safetensors"
STATE = "state.pt"
METRICS = "metrics.jsonl"


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
    """Network + schedule + parameterization for a config."""
    schedule = make_schedule(cfg.schedule, cfg.timesteps)
    num_classes = info.num_classes if cfg.conditional else 0
    out_factor = 2 if cfg.learned_variance else 1
    if cfg.model == "unet":
        model: nn.Module = _unet(cfg, info, num_classes, out_factor)
    else:
        model = MLP(
            info.dim,
            hidden=cfg.hidden,
            depth=cfg.depth,
            time_embedding=cfg.time_embedding,
            fourier_features=cfg.fourier_features,
            num_classes=num_classes,
            out_dim=info.dim * out_factor,
        )
    return Denoiser(model, schedule, cfg.target, learned_variance=cfg.learned_variance, clip=cfg.clip)


def write_run_config(run_dir: Path, cfg: TrainConfig, info: DataInfo) -> None:
    """Write config.json atomically."""
    atomic_write_json(
        run_dir / CONFIG,
        {"difflab_version": __version__, "config": cfg.to_dict(), "data": info.to_dict()},
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


def load_run(run_dir: Path, *, ema: bool = True) -> LoadedRun:
    """Rebuild the denoiser of a run from its config and (EMA) weights."""
    cfg, info = read_run_config(run_dir)
    denoiser = build_denoiser(cfg, info)
    weights = load_weights(run_dir / (EMA if ema else MODEL))
    try:
        denoiser.model.load_state_dict(weights)
    except RuntimeError as e:
        raise UserError(f"{run_dir}: weights do not match the config ({str(e).splitlines()[0]})") from None
    denoiser.eval()
    return LoadedRun(cfg, info, denoiser)
