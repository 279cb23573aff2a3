"""The model a config describes: the network factory, and a trained denoiser with its config and data facts.

`build_denoiser` turns a config and the data's item shape into network + schedule + parameterization;
`TrainedModel` is what sampling needs of a trained run and nothing about files (`difflab.run` owns those).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from difflab.config import TrainConfig
from difflab.data.training_set import DataInfo
from difflab.denoiser import Denoiser, DenoiserFn, Guided, Unconditional
from difflab.errors import UserError, setting
from difflab.learned_schedule import LearnedScheduleModel
from difflab.models.mlp import MLP
from difflab.models.unet import SIZE_MULTIPLE, UNet
from difflab.schedule import Schedule, make_schedule


def _unet(cfg: TrainConfig, info: DataInfo, num_classes: int, out_factor: int) -> UNet:
    """The U-Net for (C, H, W) items; H and W must survive two halvings."""
    if len(info.shape) != 3:
        unet = setting("model", "unet")
        raise UserError(f"{unet} needs images (C, H, W); {cfg.data} has items of shape {info.shape}")
    c, h, w = info.shape
    if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
        raise UserError(
            f"{setting('model', 'unet')} needs height and width divisible by {SIZE_MULTIPLE}; {cfg.data} is {h}×{w}"
        )
    return UNet(c, size=cfg.unet_size, num_classes=num_classes, out_channels=c * out_factor)


def build_denoiser(cfg: TrainConfig, info: DataInfo) -> Denoiser:
    """Network + schedule + parameterization for a config.

    A learned schedule's γ lives in the model (`LearnedScheduleModel`); its schedule here is that of the
    freshly initialized γ, and `Denoiser.refresh_schedule` must follow every change of the weights.
    """
    if cfg.model == "mlp" and len(info.shape) != 1:
        raise UserError(
            f"{setting('model', 'mlp')} takes flat items (D,); {cfg.data} has items of shape {info.shape}: "
            f"for (C, H, W) images use {setting('model', 'unet')}"
        )
    num_classes = info.num_classes if cfg.conditional else 0
    out_factor = 2 if cfg.learned_variance else 1
    if cfg.model == "unet":
        net: nn.Module = _unet(cfg, info, num_classes, out_factor)
    else:
        net = MLP(
            info.shape[0],
            hidden=cfg.hidden,
            depth=cfg.depth,
            time_embedding=cfg.time_embedding,
            fourier_features=cfg.fourier_features,
            num_classes=num_classes,
            out_dim=info.shape[0] * out_factor,
        )
    if cfg.schedule == "learned":
        model = LearnedScheduleModel(net)
        return Denoiser(model, model.schedule(cfg.timesteps), cfg.target, clip=cfg.clip)
    schedule = make_schedule(cfg.schedule, cfg.timesteps)
    return Denoiser(net, schedule, cfg.target, learned_variance=cfg.learned_variance, clip=cfg.clip)


def training_bytes(cfg: TrainConfig, info: DataInfo, n_items: int) -> float:
    """A rough upper estimate of the memory training needs: data, weights with their gradient, Adam moments
    and EMA, and the activations of one batch; used to refuse sizes the machine cannot hold before allocating."""
    dim = int(np.prod(info.shape))
    data = 8.0 * n_items * dim
    if cfg.model == "mlp":
        h = cfg.hidden
        params = (cfg.depth + 2) * h * h + (dim + cfg.fourier_features * 2 + 64) * h * 3
        activations = 4.0 * cfg.batch_size * h * (cfg.depth + 3) * 8
    else:
        params = 6_000_000 if cfg.unet_size == "base" else 1_000_000
        activations = 4.0 * cfg.batch_size * dim * 64 * 12
    return data + 4.0 * 5 * params + activations + 8.0 * 40 * cfg.timesteps


@dataclass
class TrainedModel:
    """A trained denoiser with its config and data facts: what sampling needs, and nothing about files."""

    cfg: TrainConfig
    info: DataInfo
    denoiser: Denoiser

    @property
    def schedule(self) -> Schedule:
        return self.denoiser.schedule

    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    def denoiser_for(self, labels: torch.Tensor | None = None, guidance: float = 1.0) -> DenoiserFn:
        """A sampler-ready denoiser: unconditional, or guided towards `labels`."""
        if not self.cfg.conditional:
            if labels is not None:
                raise UserError("this run was trained without classes, so it cannot sample a class")
            return Unconditional(self.denoiser)
        return Guided(self.denoiser, labels, guidance if labels is not None else 0.0, self.info.num_classes)

    def to_data_units(self, x: torch.Tensor) -> np.ndarray:
        """Invert the stored normalization."""
        return self.info.scaler.inverse(x.detach().double().cpu().numpy())


def model_from_weights(cfg: TrainConfig, info: DataInfo, weights: dict[str, torch.Tensor], where: str) -> TrainedModel:
    """Rebuild a model for sampling from weights; mismatched or non-finite weights are a UserError.

    The network is built inside a forked RNG, so loading a run leaves torch's global random state alone.
    """
    with torch.random.fork_rng(devices=[]):
        denoiser = build_denoiser(cfg, info)
    bad = [k for k, v in weights.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise UserError(f"{where}: weights hold NaN or inf ({bad[0]}); the file was altered or the run diverged")
    try:
        denoiser.model.load_state_dict(weights)
    except RuntimeError as e:
        raise UserError(f"{where}: weights do not match the config ({str(e).splitlines()[0]})") from None
    denoiser.refresh_schedule()
    denoiser.eval().requires_grad_(False)  # for sampling: predictions never track gradients
    return TrainedModel(cfg, info, denoiser)
