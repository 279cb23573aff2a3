"""The trainer: loops, steps the optimizer, keeps the EMA, logs and checkpoints. Nothing else.

Hidden-state free: the weights, EMA, optimizer, step, data position (epoch, offset), every RNG state of
every process and the loss log all go into the checkpoint, so a resumed run continues exactly where the
uninterrupted one would have been. Under torchrun each process trains on its share of every batch through
DistributedDataParallel; only rank 0 writes.
"""

from __future__ import annotations

import copy
import json
import math
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from difflab.checkpoint import atomic_write_text
from difflab.config import TrainConfig
from difflab.data.normalize import MinMaxScaler
from difflab.data.order import EpochOrder
from difflab.data.toy import PointData
from difflab.denoiser import Denoiser
from difflab.distributed import World
from difflab.errors import UserError
from difflab.learned_schedule import LearnedScheduleModel, vdm_gradients, vdm_terms
from difflab.objectives import HYBRID_VLB_WEIGHT, Objective
from difflab.run import (
    METRICS,
    Checkpoint,
    DataInfo,
    build_denoiser,
    read_checkpoint,
    refresh_schedule,
    write_checkpoint,
    write_run_config,
)
from difflab.schedule import TERMINAL_ALPHA_BAR_WARN


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept as it was."""


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped training after a checkpoint was written."""

    def __init__(self, signum: int, step: int, run_dir: Path) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}; checkpoint saved in {run_dir}")
        self.signum = signum
        self.run_dir = run_dir


@dataclass
class TrainResult:
    """What a finished training run reports."""

    steps: int
    final_loss: float  # the last logged (mean) loss
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


def rank_seed(seed: int, rank: int, stream: int) -> int:
    """Independent seeds per process and stream (0: noise, timesteps, label dropout; 1: torch's global RNG)."""
    return int(np.random.SeedSequence([seed, rank, stream]).generate_state(1, dtype=np.uint64)[0])


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast on CUDA by default (`auto`), everywhere with `bf16`; None means plain float32."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


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
    """Trains a denoiser on a normalized TrainingSet (points or images) and writes a run directory.

    `cfg.batch_size` is the global batch; each of the `world.size` processes draws its share. With a learned
    schedule the network and γ train jointly on the continuous-time VDM bound (`local_vdm_loss`), and
    `self.denoiser.schedule` is re-discretized from γ after restoring and after `fit`.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        data: TrainingSet,
        run_dir: Path,
        *,
        world: World | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.world = world or World()
        if cfg.batch_size % self.world.size:
            raise UserError(f"--batch-size {cfg.batch_size} must be divisible by the {self.world.size} processes")
        self.local_batch = cfg.batch_size // self.world.size
        self.device = torch.device(device)
        self.amp_dtype = autocast_dtype(cfg.precision, self.device)
        self.info = data.info
        self.x = data.x.to(self.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.denoiser: Denoiser = build_denoiser(cfg, self.info).to(self.device)
        self.model = self.denoiser.model
        self.learned_schedule = isinstance(self.model, LearnedScheduleModel)
        self.clip_groups = self._clip_groups()
        self.labels = prepare_labels(data.labels, cfg, self.info.num_classes)
        if self.labels is not None:
            self.labels = self.labels.to(self.device)
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=0.0)
        vlb_weight = HYBRID_VLB_WEIGHT if cfg.learned_variance else 0.0
        self.objective = Objective(cfg.weighting, cfg.loss, cfg.min_snr_gamma, vlb_weight)
        self.order = EpochOrder(len(self.x), seed=cfg.seed, rank=self.world.rank, world_size=self.world.size)
        self.generator = torch.Generator(device=self.device).manual_seed(rank_seed(cfg.seed, self.world.rank, 0))
        torch.manual_seed(rank_seed(cfg.seed, self.world.rank, 1))  # torch seeds it randomly per process
        self.step = 0
        self.metrics: list[dict[str, Any]] = []
        self.loss_sum, self.loss_count = 0.0, 0  # since the last logged row
        self.saved_step: int | None = None  # step of the last checkpoint written or restored
        self.stop_signal: int | None = None
        self.train_denoiser = self._training_view()

    def _clip_groups(self) -> list[list[torch.nn.Parameter]]:
        """Parameters whose gradient norm is clipped together: all, or γ's shape apart from the rest.

        γ's shape follows the second moment of the loss estimate, another objective on another scale, so a
        joint norm would let it shrink the network's step.
        """
        if not self.learned_schedule:
            return [list(self.model.parameters())]
        shape_ids = {id(p) for p in self.model.gamma.shape_parameters()}
        params = list(self.model.parameters())
        return [[p for p in params if id(p) not in shape_ids], [p for p in params if id(p) in shape_ids]]

    def _training_view(self) -> Denoiser:
        """The denoiser the loss goes through: same parameters, wrapped in DDP and/or torch.compile.

        Not in DDP for a learned schedule: its two gradient calls bypass DDP's backward hooks, so
        `local_vdm_loss` averages the gradients itself.
        """
        net: torch.nn.Module = self.model
        if self.world.distributed and not self.learned_schedule:
            ids = [self.device.index] if self.device.type == "cuda" else None
            net = DistributedDataParallel(net, device_ids=ids)
        if self.cfg.compile:
            net = torch.compile(net)
        d = self.denoiser
        return Denoiser(net, d.schedule, d.target, learned_variance=d.learned_variance, clip=d.clip)

    # --- persistence ---
    def _rng_state(self) -> dict[str, Any]:
        state = {"device": self.device.type, "generator": self.generator.get_state(), "torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def checkpoint(self) -> Checkpoint:
        """This trainer's complete state (collective: every process contributes its RNG states)."""
        rng = self.world.gather(self._rng_state())
        state = {
            "optimizer": self.optimizer.state_dict(),
            "rng": rng,
            "data_order": self.order.state_dict(),
            "metrics": self.metrics,
            "loss_sum": self.loss_sum,
            "loss_count": self.loss_count,
        }
        return Checkpoint(self.step, self.model.state_dict(), self.ema.state_dict(), state)

    def save(self) -> None:
        """Commit a checkpoint (rank 0 writes); a failed write is one clear error on every process."""
        if self.step == self.saved_step:
            return
        ckpt = self.checkpoint()
        error = None
        if self.world.is_main:
            try:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                write_run_config(self.run_dir, self.cfg, self.info)
                write_checkpoint(self.run_dir, ckpt)
                lines = "".join(json.dumps(row) + "\n" for row in self.metrics)
                atomic_write_text(self.run_dir / METRICS, lines)
            except OSError as e:
                kept = (
                    "there was no earlier checkpoint"
                    if self.saved_step is None
                    else f"the checkpoint of step {self.saved_step} is intact"
                )
                error = f"cannot write the step {self.step} checkpoint in {self.run_dir} ({e.strerror or e}); {kept}"
        self.world.check(error)
        self.saved_step = self.step

    def begin(self) -> None:
        """Create the run directory and write config.json (rank 0) before any work that could be lost."""
        error = None
        if self.world.is_main:
            try:
                self.run_dir.mkdir(parents=True, exist_ok=True)
                write_run_config(self.run_dir, self.cfg, self.info)
            except OSError as e:
                error = f"cannot write to {self.run_dir} ({e.strerror or e}); nothing was changed"
        self.world.check(error)

    def restore(self) -> bool:
        """Continue from the run's last checkpoint (read by rank 0, sent to all); False if there is none."""
        ckpt, error = None, None
        if self.world.is_main:
            try:
                ckpt = read_checkpoint(self.run_dir)
            except UserError as e:
                error = str(e)
        self.world.check(error)
        ckpt = self.world.from_main(ckpt)
        if ckpt is None:
            return False
        self.load(ckpt)
        return True

    def load(self, ckpt: Checkpoint) -> None:
        """Put every piece of a checkpoint back; a checkpoint from another config is a UserError."""
        state = ckpt.state
        rng = state.get("rng")
        if not isinstance(rng, list) or len(rng) != self.world.size:
            n = len(rng) if isinstance(rng, list) else "?"
            raise UserError(
                f"{self.run_dir}: checkpoint was written by {n} process(es); resume it with the same number "
                f"(torchrun --nproc_per_node) to continue exactly, not {self.world.size}"
            )
        mine = rng[self.world.rank]
        if mine.get("device") != self.device.type:
            raise UserError(
                f"{self.run_dir}: checkpoint was written on {mine.get('device')}; resume it there "
                f"(random streams differ between device types), not on {self.device.type}"
            )
        try:
            self.model.load_state_dict(ckpt.model)
            self.ema.load_state_dict(ckpt.ema)
            self.optimizer.load_state_dict(state["optimizer"])
            self.generator.set_state(mine["generator"])
            torch.set_rng_state(mine["torch"])
            if "cuda" in mine:
                torch.cuda.set_rng_state(mine["cuda"], self.device)
            self.order.load_state_dict(state["data_order"])
            self.metrics = list(state["metrics"])
            self.loss_sum, self.loss_count = float(state["loss_sum"]), int(state["loss_count"])
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            raise UserError(
                f"{self.run_dir}: checkpoint does not match this config ({str(e).splitlines()[0]})"
            ) from None
        self.step = self.saved_step = ckpt.step
        refresh_schedule(self.denoiser)

    # --- the loop ---
    def batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This process's next items in epoch order, and their labels after classifier-free dropout."""
        idx = self.order.take(self.local_batch).to(self.device)
        if self.labels is None:
            return self.x[idx], None
        labels = self.labels[idx]
        drop = torch.rand(len(idx), generator=self.generator, device=self.device) < self.cfg.p_uncond
        return self.x[idx], torch.where(drop, self.info.num_classes, labels)

    def local_loss(self) -> torch.Tensor:
        """This process's loss on its share of the batch (bf16 autocast when configured)."""
        x0, cond = self.batch()
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32, enabled=bool(self.amp_dtype)):
            return self.objective(self.train_denoiser, x0, cond, generator=self.generator)

    def local_vdm_loss(self) -> tuple[torch.Tensor, Callable[[], None]]:
        """This process's VDM bound (nats/dim) on its share of the batch, and a function that sets the gradients.

        The gradients come from two gradient calls (`vdm_gradients`) and are averaged over processes with one
        all-reduce, as DDP does for the other path. Only the network runs under autocast: γ and its
        derivative stay in float32.
        """
        x0, cond = self.batch()
        net = self.train_denoiser.model
        amp = self.amp_dtype

        def network(z: torch.Tensor, t: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
            with torch.autocast(self.device.type, dtype=amp or torch.float32, enabled=bool(amp)):
                return net(z, t, c).float()

        gamma = self.model.gamma
        terms = vdm_terms(network, gamma, self.cfg.target, x0, cond, generator=self.generator)
        vlb = terms.total.mean() / x0[0].numel()

        def set_gradients() -> None:
            params = list(self.model.parameters())
            grads = vdm_gradients(terms, vlb, params, gamma)
            found = [(p, g) for p, g in zip(params, grads, strict=True) if g is not None]
            flat = self.world.all_reduce_sum(torch.cat([g.flatten() for _, g in found])) / self.world.size
            if not bool(torch.isfinite(flat).all()):
                self._diverged("a gradient", "not finite")
            for (p, g), mean in zip(found, flat.split([g.numel() for _, g in found]), strict=True):
                p.grad = mean.view_as(g)

        return vlb, set_gradients

    def _diverged(self, what: str, value: object) -> None:
        kept = "no checkpoint yet" if self.saved_step is None else f"step {self.saved_step}"
        raise TrainingDiverged(
            f"{what} became {value} at step {self.step + 1}; "
            f"the last good checkpoint ({kept}) is untouched in {self.run_dir}"
        )

    def train_step(self) -> tuple[float, bool]:
        """One optimizer step; returns the loss averaged over processes and whether any process was signalled.

        Both travel in one all-reduce before the backward pass, so every process stops (or raises) together.
        """
        if self.learned_schedule:
            loss, set_gradients = self.local_vdm_loss()
        else:
            loss = self.local_loss()
            set_gradients = loss.backward  # under DDP this also averages the gradients over processes
        flag = 0.0 if self.stop_signal is None else 1.0
        shared = self.world.all_reduce_sum(torch.stack([loss.detach().float(), loss.new_tensor(flag).float()]))
        mean_loss, stop = shared[0].item() / self.world.size, shared[1].item() > 0
        if not math.isfinite(mean_loss):
            self._diverged("loss", mean_loss)
        self.optimizer.zero_grad(set_to_none=True)
        set_gradients()
        self.update()
        return mean_loss, stop

    def update(self) -> None:
        """Apply the (averaged) gradients: scheduled lr, clipping, AdamW, EMA; advances the step."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.step, self.cfg)
        if self.cfg.grad_clip > 0:
            for group in self.clip_groups:
                torch.nn.utils.clip_grad_norm_(group, self.cfg.grad_clip)
        self.optimizer.step()
        ema_update(self.ema, self.model, self.cfg.ema_decay, self.step)
        self.step += 1

    @contextmanager
    def _stop_signals(self) -> Iterator[None]:
        """Turn SIGINT/SIGTERM into "checkpoint after this step, then stop" for the duration of `fit`."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def note(signum: int, _frame: Any) -> None:
            self.stop_signal = signum

        previous = {s: signal.signal(s, note) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _warn_terminal(self, *, after_training: bool = False) -> None:
        """Warn if the schedule does not end near pure noise. A learned schedule moves its end point
        (γ_max) while training, so it is checked again after training."""
        terminal = self.denoiser.schedule.terminal_alpha_bar
        if terminal > TERMINAL_ALPHA_BAR_WARN and self.world.is_main:
            when = "after training " if after_training else ""
            warnings.warn(
                f"schedule '{self.cfg.schedule}' with T={self.cfg.timesteps} {when}ends at ᾱ={terminal:.3g}, "
                "not ≈ 0: sampling from N(0, I) starts from the wrong distribution",
                stacklevel=3,
            )

    def fit(self, *, progress: bool | None = None) -> TrainResult:
        """Train until `cfg.steps`, checkpointing every `checkpoint_every` steps, at the end, and on a signal."""
        self._warn_terminal()
        self.begin()
        if self.step and self.world.is_main:
            print(f"resuming {self.run_dir} from step {self.step}", file=sys.stderr)
        show = (sys.stderr.isatty() if progress is None else progress) and self.world.is_main
        start_time = time.perf_counter()
        bar = tqdm(total=self.cfg.steps, initial=self.step, disable=not show, desc="train", unit="step")
        self.denoiser.train()
        with self._stop_signals():
            while self.step < self.cfg.steps:
                loss, stop = self.train_step()
                self.loss_sum += loss
                self.loss_count += 1
                if self.step % self.cfg.log_every == 0 or self.step == self.cfg.steps:
                    mean = self.loss_sum / self.loss_count
                    self.metrics.append({"step": self.step, "loss": mean, "lr": lr_at(self.step - 1, self.cfg)})
                    bar.set_postfix(loss=f"{mean:.4f}")
                    self.loss_sum, self.loss_count = 0.0, 0
                if stop or self.step % self.cfg.checkpoint_every == 0 or self.step == self.cfg.steps:
                    self.save()
                bar.update(1)
                if stop:
                    bar.close()
                    raise Interrupted(self.stop_signal or signal.SIGTERM, self.step, self.run_dir)
        bar.close()
        refresh_schedule(self.denoiser)
        if self.cfg.schedule == "learned":
            self._warn_terminal(after_training=True)
        last = self.metrics[-1]["loss"] if self.metrics else float("nan")
        return TrainResult(self.step, last, time.perf_counter() - start_time)
