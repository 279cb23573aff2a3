"""The trainer: loops, steps the optimizer, keeps the EMA, logs and checkpoints. Nothing else.

Hidden-state free: the weights, EMA, optimizer, step, data position (epoch, offset) and every RNG state of
every process go into the checkpoint, so a resumed run continues exactly where the uninterrupted one would
have been. Under torchrun each process computes the loss on its share of every batch and the gradients are
averaged over processes; only rank 0 writes. What a step computes is the objective's business
(`difflab.objectives`); where checkpoints go is the store's (`difflab.training_state`).
"""

from __future__ import annotations

import copy
import math
import signal
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from difflab import interrupts
from difflab.callbacks import Callback, Event, emit
from difflab.config import TrainConfig
from difflab.data.order import EpochOrder
from difflab.data.training_set import TrainingSet
from difflab.denoiser import Denoiser
from difflab.distill import Teacher, build_distillation
from difflab.distributed import World
from difflab.errors import UserError, setting
from difflab.model import build_denoiser
from difflab.objectives import Objective, build_objective
from difflab.progress import show_progress, tqdm
from difflab.schedule import TERMINAL_ALPHA_BAR_WARN, NoisePath
from difflab.threads import Refit
from difflab.training_state import Checkpoint, MemoryStore, Store
from difflab.training_step import Autocast, autocast_dtype, ema_update, lr_at, prepare_labels, rank_seed


class TrainingDiverged(UserError):
    """The loss became NaN or infinite; the last good checkpoint is kept as it was."""


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped training after a checkpoint was written."""

    def __init__(self, signum: int, step: int, where: str) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}; checkpoint saved in {where}")
        self.signum = signum
        self.where = where


@dataclass
class TrainResult:
    """What a finished training run reports."""

    steps: int
    final_loss: float  # the last logged (mean) loss
    seconds: float  # wall time of this call of `fit`
    start_step: int


#: Called on rank 0 with each logged row, and every `sample_every` steps with (step, EMA denoiser); a sample hook
#: that returns True ends training as a callback does.
LogHook = Callable[[dict[str, Any]], None]
SampleHook = Callable[[int, Denoiser], object]


class Trainer:
    """Trains a denoiser on a normalized TrainingSet (points or images) into a `Store`.

    `cfg.batch_size` is the global batch; each of the `world.size` processes draws its share. Only rank 0
    touches the store; every process keeps its own random streams, all saved in each checkpoint.
    """

    def __init__(
        self,
        cfg: TrainConfig,
        data: TrainingSet,
        store: Store | None = None,
        *,
        world: World | None = None,
        device: torch.device | str = "cpu",
        where: str = "memory",
        teacher: Teacher | None = None,
    ) -> None:
        self.cfg = cfg
        self.store: Store = store if store is not None else MemoryStore()
        self.where = where
        self.world = world or World()
        if cfg.batch_size % self.world.size:
            raise UserError(
                f"{setting('batch_size', cfg.batch_size)} must be divisible by the {self.world.size} processes"
            )
        self.local_batch = cfg.batch_size // self.world.size
        self.device = torch.device(device)
        self.info = data.info
        self.x = data.x.to(self.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            self.denoiser: Denoiser = build_denoiser(cfg, self.info).to(self.device)
        self.model = self.denoiser.model
        self.labels = prepare_labels(data.labels, cfg, self.info.num_classes)
        if self.labels is not None:
            self.labels = self.labels.to(self.device)
        self.objective: Objective
        if cfg.is_student:
            if teacher is None:
                raise ValueError("a student config needs its teacher")
            self.model.load_state_dict(teacher.model.denoiser.model.state_dict())  # a student starts as its teacher
            self.objective = build_distillation(cfg, teacher, self.labels, self.device, rank_seed(cfg.seed, 0, 2))
        else:
            self.objective = build_objective(
                self.model,
                cfg.target,
                weighting=cfg.weighting,
                loss=cfg.loss,
                min_snr_gamma=cfg.min_snr_gamma,
                learned_variance=cfg.learned_variance,
                path=NoisePath(cfg.schedule, cfg.timesteps) if cfg.continuous_time else None,
            )
        self.clip_groups = self.objective.clip_groups(self.model)
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        # foreach: one kernel per operation over all tensors; PyTorch uses it by default on CUDA only, and on the
        # CPU it made a default-config step faster than the per-tensor loop (commit 8e7fa4a).
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=0.0, foreach=True)
        self.order = EpochOrder(len(self.x), seed=cfg.seed, rank=self.world.rank, world_size=self.world.size)
        self.generator = torch.Generator(device=self.device).manual_seed(rank_seed(cfg.seed, self.world.rank, 0))
        # torch's global RNG (dropout) is seeded per process and swapped in only while `fit` runs.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(rank_seed(cfg.seed, self.world.rank, 1))
            self.global_rng = torch.get_rng_state()
        self.step = 0
        self.elapsed = 0.0  # training seconds over all calls of `fit`, resumes included
        self.loss_sum, self.loss_count = 0.0, 0  # since the last logged row
        self.last_loss = float("nan")  # mean loss of the last logged interval
        self.saved_step: int | None = None  # step of the last checkpoint written or restored
        self.stop_signal: int | None = None
        self.callback_stop = False  # a callback on this process asked to stop: all processes stop at the next step
        self.stop_requested = False  # some process's callback asked, one step ago: every process ends now
        self.train_denoiser = self._training_view()
        #: How progress lines name what runs: a student is distilled, any other run trained.
        self.command = "difflab distill" if cfg.is_student else "difflab train"

    def _training_view(self) -> Denoiser:
        """The denoiser the loss goes through: same parameters, under autocast and/or torch.compile."""
        net: nn.Module = self.model
        amp = autocast_dtype(self.cfg.precision, self.device)
        if amp is not None:
            net = Autocast(net, amp, self.device.type)
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
        """This trainer's complete state (collective: every process contributes its RNG states); call inside `fit`."""
        rng = self.world.gather(self._rng_state())
        state = {
            "optimizer": self.optimizer.state_dict(),
            "rng": rng,
            "data_order": self.order.state_dict(),
            "loss_sum": self.loss_sum,
            "loss_count": self.loss_count,
            "elapsed": self.elapsed,
        }
        return Checkpoint(self.step, self.model.state_dict(), self.ema.state_dict(), state)

    def save(self) -> bool:
        """Commit a checkpoint (rank 0 writes); a failed write is one clear error on every process. False when
        this step's checkpoint was already written."""
        if self.step == self.saved_step:
            return False
        ckpt = self.checkpoint()
        error = None
        if self.world.is_main:
            try:
                self.store.save(ckpt)
            except OSError as e:
                kept = (
                    "there was no earlier checkpoint"
                    if self.saved_step is None
                    else f"the checkpoint of step {self.saved_step} is intact"
                )
                error = f"cannot write the step {self.step} checkpoint in {self.where} ({e.strerror or e}); {kept}"
        self.world.check(error)
        self.saved_step = self.step
        return True

    def begin(self) -> None:
        """Let the store record the run (rank 0) before any work that could be lost."""
        error = None
        if self.world.is_main:
            try:
                self.store.begin()
            except UserError as e:
                error = str(e)
        self.world.check(error)

    def restore(self) -> bool:
        """Continue from the store's last checkpoint (read by rank 0, sent to all); False if there is none."""
        ckpt, error = None, None
        if self.world.is_main:
            try:
                ckpt = self.store.restore()
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
                f"{self.where}: checkpoint was written by {n} process(es); resume it with the same number "
                f"(torchrun --nproc_per_node) to continue exactly, not {self.world.size}"
            )
        mine = rng[self.world.rank]
        if not isinstance(mine, dict) or mine.get("device") != self.device.type:
            written = mine.get("device") if isinstance(mine, dict) else "?"
            raise UserError(
                f"{self.where}: checkpoint was written on {written}; resume it there "
                f"(random streams differ between device types), not on {self.device.type}"
            )
        try:
            self.model.load_state_dict(ckpt.model)
            self.ema.load_state_dict(ckpt.ema)
            self.optimizer.load_state_dict(state["optimizer"])
            self.generator.set_state(mine["generator"])
            # torch's own checks accept any byte string of the right length, so test the state on a scratch
            # generator first: a malformed one must not reach the global RNG.
            torch.Generator().set_state(mine["torch"])
            self.global_rng = mine["torch"].clone()
            if "cuda" in mine:
                torch.cuda.set_rng_state(mine["cuda"], self.device)
            self.order.load_state_dict(state["data_order"])
            self.loss_sum, self.loss_count = float(state["loss_sum"]), int(state["loss_count"])
            self.elapsed = float(state.get("elapsed", 0.0))
        except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as e:
            raise UserError(f"{self.where}: checkpoint does not match this config ({str(e).splitlines()[0]})") from None
        if not 0 <= ckpt.step <= self.cfg.steps or not math.isfinite(self.loss_sum):
            if ckpt.step > self.cfg.steps:
                raise UserError(f"{self.where} is already at step {ckpt.step}, past {setting('steps', self.cfg.steps)}")
            raise UserError(f"{self.where}: checkpoint holds an invalid step or loss")
        self.step = self.saved_step = ckpt.step
        self.denoiser.refresh_schedule()

    # --- the loop ---
    def batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This process's next items in epoch order, and their labels after classifier-free dropout."""
        idx = self.order.take(self.local_batch).to(self.device)
        if self.labels is None:
            return self.x[idx], None
        labels = self.labels[idx]
        drop = torch.rand(len(idx), generator=self.generator, device=self.device) < self.cfg.p_uncond
        return self.x[idx], torch.where(drop, self.info.num_classes, labels)

    def _diverged(self, what: str, value: object) -> None:
        kept = "no checkpoint yet" if self.saved_step is None else f"step {self.saved_step}"
        raise TrainingDiverged(
            f"{what} became {value} at step {self.step + 1}; the last good checkpoint ({kept}) is untouched in "
            f"{self.where}"
        )

    def train_step(self) -> tuple[float, bool]:
        """One optimizer step; returns the loss averaged over processes and whether any process was signalled.

        Both travel in one all-reduce before the backward pass, so every process stops (or raises) together.
        """
        x0, cond = self.batch()
        loss = self.objective(self.train_denoiser, x0, cond, generator=self.generator)
        flags = [0.0 if self.stop_signal is None else 1.0, 1.0 if self.callback_stop else 0.0]
        shared = self.world.all_reduce_sum(
            torch.stack([loss.value.detach().float(), *map(loss.value.new_tensor, flags)])
        )
        mean_loss, stop = shared[0].item() / self.world.size, shared[1].item() > 0
        self.stop_requested = shared[2].item() > 0
        if not math.isfinite(mean_loss):
            self._diverged("loss", mean_loss)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.world.average_gradients(self.model.parameters())
        self.update()
        return mean_loss, stop

    def update(self) -> None:
        """Apply the (averaged) gradients: scheduled lr, clipping, AdamW, EMA; advances the step.

        Clipping measures each group's gradient norm; a non-finite norm stops training before the weights change.
        """
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(self.step, self.cfg)
        if self.cfg.grad_clip > 0:
            for group in self.clip_groups:
                norm = torch.nn.utils.clip_grad_norm_(group, self.cfg.grad_clip)
                if not math.isfinite(float(norm)):
                    self._diverged("a gradient", "not finite")
        self.optimizer.step()
        ema_update(self.ema, self.model, self.cfg.ema_decay, self.step)
        self.step += 1

    def ema_denoiser(self) -> Denoiser:
        """The EMA weights as a denoiser in eval mode (shares the EMA's parameters; do not train it)."""
        d = self.denoiser
        ema = Denoiser(self.ema, d.schedule, d.target, learned_variance=d.learned_variance, clip=d.clip)
        ema.refresh_schedule()
        return ema.eval()

    def _note_signal(self, signum: int) -> None:
        """SIGINT/SIGTERM during `fit`: checkpoint after this step, then stop."""
        self.stop_signal = signum

    def _warn_terminal(self, before: float | None = None) -> float:
        """Warn if the schedule does not end near pure noise; a learned schedule moves its end point while it
        trains, so `fit` checks again afterwards (`before`: the value already warned about)."""
        terminal = self.denoiser.schedule.terminal_alpha_bar
        if terminal > TERMINAL_ALPHA_BAR_WARN and self.world.is_main and terminal != before:
            when = "after training " if before is not None else ""
            warnings.warn(
                f"schedule '{self.cfg.schedule}' with T={self.cfg.timesteps} {when}ends at ᾱ={terminal:.3g}, "
                "not ≈ 0: sampling from N(0, I) starts from the wrong distribution",
                stacklevel=3,
            )
        return terminal

    def _log(self, bar: tqdm, interval_start: tuple[float, int], lines: bool, on_log: LogHook | None) -> None:
        mean = self.loss_sum / self.loss_count
        now = time.perf_counter()
        rate = (self.step - interval_start[1]) / max(now - interval_start[0], 1e-9)
        row = {
            "step": self.step,
            "loss": mean,
            "lr": lr_at(self.step - 1, self.cfg),
            "time": round(time.time(), 3),
            "elapsed": round(self.elapsed, 3),
            "steps_per_s": round(rate, 2),
        }
        self.loss_sum, self.loss_count = 0.0, 0
        self.last_loss = mean
        bar.set_postfix(loss=f"{mean:.4f}")
        if self.world.is_main:
            self.store.log(row)
            if on_log is not None:
                on_log(row)
            if lines:
                print(
                    f"{self.command}: step {self.step}/{self.cfg.steps} loss {mean:.4f} lr {row['lr']:.2e} "
                    f"{rate:.0f} steps/s",
                    file=sys.stderr,
                    flush=True,
                )

    def fit(
        self,
        *,
        progress: bool | None = None,
        on_log: LogHook | None = None,
        on_sample: SampleHook | None = None,
        callbacks: Sequence[Callback] = (),
    ) -> TrainResult:
        """Train until `cfg.steps`, checkpointing every `checkpoint_every` steps, at the end, and on a signal.

        `progress`: a bar (None: in a terminal or notebook; in a log, one line per logged interval).
        `callbacks` hear each step and checkpoint (rank 0); one that returns True ends training after that step
        with a checkpoint (`on_sample` may ask the same). Under torchrun every process stops one step later.
        """
        callbacks = callbacks if self.world.is_main else ()
        terminal = self._warn_terminal()
        self.begin()
        start_step = self.step
        if self.step and self.world.is_main and progress is not False:
            print(f"{self.command}: resuming {self.where} from step {self.step}", file=sys.stderr)
        bar_on, lines = show_progress(progress)
        bar = tqdm(
            total=self.cfg.steps,
            initial=self.step,
            disable=not (bar_on and self.world.is_main),
            desc="train",
            unit="step",
            file=sys.stderr,
        )
        self.denoiser.train()
        start = time.perf_counter()
        interval = (start, self.step)
        cuda = [self.device] if self.device.type == "cuda" else []
        refit_threads = Refit(self.cfg.threads)
        with interrupts.handled(self._note_signal), torch.random.fork_rng(devices=cuda):
            torch.set_rng_state(self.global_rng)
            try:
                while self.step < self.cfg.steps:
                    refit_threads()
                    step_start = time.perf_counter()
                    loss, stop = self.train_step()
                    self.elapsed += time.perf_counter() - step_start
                    self.loss_sum += loss
                    self.loss_count += 1
                    logged = self.step % self.cfg.log_every == 0 or self.step == self.cfg.steps
                    if logged:
                        self._log(bar, interval, lines and self.world.is_main, on_log)
                        interval = (time.perf_counter(), self.step)
                    asked = emit(callbacks, Event("step", self.step, loss=loss))
                    if on_sample is not None and self.cfg.sample_every and self.step % self.cfg.sample_every == 0:
                        if self.world.is_main:
                            asked |= on_sample(self.step, self.ema_denoiser()) is True
                        self.denoiser.train()
                    # One process ends at once; under torchrun all end at the next step, told by its all-reduce.
                    ends = self.stop_requested or (asked and self.world.size == 1)
                    due = self.step % self.cfg.checkpoint_every == 0 or self.step == self.cfg.steps
                    if (stop or ends or due) and self.save():
                        asked |= emit(callbacks, Event("checkpoint", self.step))
                    bar.update(1)
                    if stop:
                        raise Interrupted(self.stop_signal or signal.SIGTERM, self.step, self.where)
                    if ends:
                        if not logged:
                            self._log(bar, interval, lines and self.world.is_main, on_log)
                        break
                    self.callback_stop = asked
            finally:
                self.global_rng = torch.get_rng_state()
                bar.close()
        self.denoiser.refresh_schedule()
        self._warn_terminal(before=terminal)
        return TrainResult(self.step, self.last_loss, time.perf_counter() - start, start_step)
