"""The trainer: loops, steps the optimizer, keeps the EMA, logs and checkpoints. Nothing else.

One `torch.Generator` drives batch order, label dropout, timesteps and noise, and its state is
checkpointed with the optimizer, so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from difflab.checkpoint import atomic_write_text, load_state, load_weights, save_state, save_weights
from difflab.config import TrainConfig
from difflab.data.normalize import MinMaxScaler
from difflab.data.toy import PointData
from difflab.denoiser import Denoiser
from difflab.errors import UserError
from difflab.objectives import Objective
from difflab.run import EMA, METRICS, MODEL, STATE, DataInfo, build_denoiser, write_run_config
from difflab.schedule import TERMINAL_ALPHA_BAR_WARN


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept as it was."""


@dataclass
class TrainResult:
    """What a finished training run reports."""

    steps: int
    final_loss: float
    seconds: float


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up for `lr_warmup` steps, then cosine decay to 10% of `lr` at the last step."""
    if step < cfg.lr_warmup:
        return cfg.lr * (step + 1) / cfg.lr_warmup
    progress = (step - cfg.lr_warmup) / max(cfg.steps - cfg.lr_warmup, 1)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float, step: int) -> None:
    """θ_ema ← d θ_ema + (1 - d) θ with warm-up d = min(decay, (1 + step) / (10 + step))."""
    d = min(decay, (1 + step) / (10 + step))
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p, 1.0 - d)


@dataclass
class TrainingSet:
    """Normalized training items (N, *shape) in [-1, 1], their labels (or None), and the data facts."""

    x: torch.Tensor
    labels: np.ndarray | None
    info: DataInfo


def point_training_set(data: PointData, cfg: TrainConfig) -> TrainingSet:
    """Fit the per-column [-1, 1] normalization to point data."""
    scaler = MinMaxScaler.fit(data.x)
    info = DataInfo((data.x.shape[1],), scaler, data.class_names if cfg.conditional else None)
    return TrainingSet(torch.as_tensor(scaler.transform(data.x), dtype=torch.float32), data.labels, info)


def prepare_labels(labels_in: np.ndarray | None, cfg: TrainConfig, null_label: int) -> torch.Tensor | None:
    """Labels for conditional training; with `labelled` = k only k random items keep theirs."""
    if not cfg.conditional:
        return None
    if labels_in is None:
        raise UserError(f"{cfg.data}: --conditional needs labels, and this data has none")
    labels = torch.as_tensor(labels_in, dtype=torch.int64).clone()
    if 0 <= cfg.labelled < len(labels):
        keep = np.random.default_rng(cfg.seed + 1).permutation(len(labels))[: cfg.labelled]
        mask = torch.ones(len(labels), dtype=torch.bool)
        mask[torch.as_tensor(keep)] = False
        labels[mask] = null_label
    return labels


class Trainer:
    """Trains a denoiser on a normalized TrainingSet (points or images) and writes a run directory."""

    def __init__(self, cfg: TrainConfig, data: TrainingSet, run_dir: Path, *, device: str = "cpu") -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.device = torch.device(device)
        self.info = data.info
        self.x = data.x.to(self.device)
        self.denoiser: Denoiser = build_denoiser(cfg, self.info).to(self.device)
        self.labels = prepare_labels(data.labels, cfg, self.info.num_classes)
        if self.labels is not None:
            self.labels = self.labels.to(self.device)
        self.ema = copy.deepcopy(self.denoiser.model).requires_grad_(False)
        self.optimizer = torch.optim.AdamW(self.denoiser.model.parameters(), lr=cfg.lr, weight_decay=0.0)
        self.objective = Objective(cfg.weighting, cfg.loss, cfg.min_snr_gamma)
        self.generator = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.step = 0
        self.metrics: list[dict[str, Any]] = []

    # --- persistence ---
    def save(self) -> None:
        """Checkpoint weights, EMA, optimizer, step, RNG and the loss log, each file atomically."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_run_config(self.run_dir, self.cfg, self.info)
        save_weights(self.run_dir / MODEL, self.denoiser.model.state_dict())
        save_weights(self.run_dir / EMA, self.ema.state_dict())
        save_state(
            self.run_dir / STATE,
            {
                "step": self.step,
                "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(),
            },
        )
        lines = "".join(json.dumps(row) + "\n" for row in self.metrics)
        atomic_write_text(self.run_dir / METRICS, lines)

    def restore(self) -> None:
        """Load the last checkpoint of `run_dir` into this trainer."""
        state = load_state(self.run_dir / STATE)
        try:
            self.denoiser.model.load_state_dict(load_weights(self.run_dir / MODEL))
            self.ema.load_state_dict(load_weights(self.run_dir / EMA))
            self.optimizer.load_state_dict(state["optimizer"])
            self.generator.set_state(state["generator"])
            self.step = int(state["step"])
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            raise UserError(
                f"{self.run_dir}: checkpoint does not match this config ({str(e).splitlines()[0]})"
            ) from None
        path = self.run_dir / METRICS
        rows = [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []
        self.metrics = [row for row in rows if row["step"] <= self.step]

    # --- the loop ---
    def batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A random batch (with replacement) and its labels after classifier-free dropout."""
        idx = torch.randint(0, len(self.x), (self.cfg.batch_size,), generator=self.generator, device=self.device)
        if self.labels is None:
            return self.x[idx], None
        labels = self.labels[idx]
        drop = torch.rand(len(idx), generator=self.generator, device=self.device) < self.cfg.p_uncond
        return self.x[idx], torch.where(drop, self.info.num_classes, labels)

    def train_step(self) -> float:
        """One optimizer step; returns the loss."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.step, self.cfg)
        x0, cond = self.batch()
        loss = self.objective(self.denoiser, x0, cond, generator=self.generator)
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"loss became {loss.item()} at step {self.step + 1}; last good checkpoint left in {self.run_dir}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.denoiser.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        ema_update(self.ema, self.denoiser.model, self.cfg.ema_decay, self.step)
        self.step += 1
        return float(loss.detach())

    def fit(self, *, progress: bool | None = None) -> TrainResult:
        """Train until `cfg.steps`, checkpointing every `checkpoint_every` steps and at the end."""
        terminal = self.denoiser.schedule.terminal_alpha_bar
        if terminal > TERMINAL_ALPHA_BAR_WARN:
            warnings.warn(
                f"schedule '{self.cfg.schedule}' with T={self.cfg.timesteps} ends at ᾱ={terminal:.3g}, not ≈ 0: "
                "sampling from N(0, I) starts from the wrong distribution",
                stacklevel=2,
            )
        show = sys.stderr.isatty() if progress is None else progress
        start_time, running, last = time.perf_counter(), 0.0, float("nan")
        bar = tqdm(total=self.cfg.steps, initial=self.step, disable=not show, desc="train", unit="step")
        self.denoiser.train()
        while self.step < self.cfg.steps:
            last = self.train_step()
            running += last
            if self.step % self.cfg.log_every == 0 or self.step == self.cfg.steps:
                count = self.cfg.log_every if self.step % self.cfg.log_every == 0 else self.step % self.cfg.log_every
                self.metrics.append(
                    {
                        "step": self.step,
                        "loss": running / count,
                        "lr": lr_at(self.step - 1, self.cfg),
                    }
                )
                bar.set_postfix(loss=f"{running / count:.4f}")
                running = 0.0
            if self.step % self.cfg.checkpoint_every == 0 or self.step == self.cfg.steps:
                self.save()
            bar.update(1)
        bar.close()
        return TrainResult(self.step, last, time.perf_counter() - start_time)
