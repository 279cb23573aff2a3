"""The parts of a training step that need no trainer: the learning-rate schedule, the EMA, per-process seeds,
bf16 autocast, and the labels conditional training sees."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from difflab.config import TrainConfig
from difflab.errors import UserError, option


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up for `lr_warmup` steps, then cosine decay to 10% of `lr` at the last step."""
    if step < cfg.lr_warmup:
        return cfg.lr * (step + 1) / cfg.lr_warmup
    progress = (step - cfg.lr_warmup) / max(cfg.steps - cfg.lr_warmup, 1)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float, step: int) -> None:
    """θ_ema ← d θ_ema + (1 - d) θ with warm-up d = min(decay, (1 + step) / (10 + step))."""
    d = min(decay, (1 + step) / (10 + step))
    torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1.0 - d)  # one call for all tensors


def rank_seed(seed: int, rank: int, stream: int) -> int:
    """Independent seeds per process and stream (0: noise, timesteps, label dropout; 1: torch's global RNG; 2: a
    reflow student's teacher pairs, the same on every process)."""
    return int(np.random.SeedSequence([seed, rank, stream]).generate_state(1, dtype=np.uint64)[0] >> 1)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast on CUDA by default (`auto`), everywhere with `bf16`; None means plain float32."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


class Autocast(nn.Module):
    """Runs a network under bf16 autocast and returns float32, so the loss around it stays in float32."""

    def __init__(self, net: nn.Module, dtype: torch.dtype, device_type: str) -> None:
        super().__init__()
        self.net = net
        self.dtype = dtype
        self.device_type = device_type

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        with torch.autocast(self.device_type, dtype=self.dtype):
            return self.net(x, t, cond).float()


def prepare_labels(labels_in: np.ndarray | None, cfg: TrainConfig, null_label: int) -> torch.Tensor | None:
    """Labels for conditional training; with `labelled` = k only k random items keep theirs."""
    if not cfg.conditional:
        return None
    if labels_in is None:
        raise UserError(f"{cfg.data}: {option('conditional')} needs labels, and this data has none")
    labels = torch.as_tensor(labels_in, dtype=torch.int64).clone()
    if 0 <= cfg.labelled < len(labels):
        keep = np.random.default_rng(cfg.seed + 1).permutation(len(labels))[: cfg.labelled]
        mask = torch.ones(len(labels), dtype=torch.bool)
        mask[torch.as_tensor(keep)] = False
        labels[mask] = null_label
    return labels
