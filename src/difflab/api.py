"""The Python API: `train`, `load`, and the `Run` they return. The command line is a thin layer over this.

import difflab
run = difflab.train("moons", steps=3000)          # in memory; out="runs/m" writes a run directory
x = run.sample(2000)                               # numpy array in data units
print(run.evaluate().summary())                    # energy distance and k-NN precision/recall, with spread
run.plot("figures/")                               # PNGs of the data, samples and the process
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

import difflab.distributed as distributed
import difflab.session as session
from difflab.callbacks import Callback, check_callbacks
from difflab.config import DEFAULT_DISTILL_METHOD, DEFAULT_STUDENT_STEPS, TrainConfig
from difflab.data.files import class_index
from difflab.data.training_set import DataInfo, DataSource
from difflab.defaults import ANIMATION_FRAMES
from difflab.errors import UserError, setting
from difflab.evaluation import EVAL, Evaluation
from difflab.kind import Kind
from difflab.kinds import kind_for_info
from difflab.limits import check_flag, check_number, check_path
from difflab.model import TrainedModel, model_from_weights
from difflab.run import (
    RunRecord,
    read_data,
    read_metrics,
    read_run_record,
    read_sampling_weights,
    write_run,
)
from difflab.sampling import Sampling, SamplingOptions, draw, resolve
from difflab.threads import ThreadGovernor, torch_threads
from difflab.trainer import TrainResult
from difflab.training_state import Checkpoint
from difflab.types import DeviceChoice, DistillMethod, SamplerName, Spacing

SAMPLING_KEYS = frozenset(f.name for f in fields(SamplingOptions))


def _sampling(given: dict[str, Any]) -> SamplingOptions:
    """SamplingOptions from keyword arguments; an unknown one is a UserError listing the valid ones."""
    unknown = sorted(set(given) - SAMPLING_KEYS)
    if unknown:
        raise UserError(f"unknown sampling option(s) {', '.join(unknown)}; valid: {', '.join(sorted(SAMPLING_KEYS))}")
    return SamplingOptions(**given)


class Run:
    """A trained diffusion model: its config, data facts, weights (EMA), and its directory if it has one.

    Made by `difflab.train` or `difflab.load`. Every method that samples takes the sampling options of
    `SamplingOptions` (sampler, steps, spacing, guidance, clip, eta, variance, chunk_size); what is not given
    comes from the defaults of the run's kind (`Run.kind.defaults.sampling`).
    """

    def __init__(
        self,
        model: TrainedModel,
        source: DataSource,
        *,
        step: int,
        path: Path | None = None,
        metrics: list[dict[str, Any]] | None = None,
        data: dict[str, np.ndarray] | None = None,
        checkpoint: Checkpoint | None = None,
        training: TrainResult | None = None,
    ) -> None:
        self.model = model
        self.source = source
        self.step = step
        self.path = path
        self.kind: Kind = kind_for_info(model.info)
        self._metrics = metrics
        self._data = data
        self._checkpoint = checkpoint
        #: What the `train` call that made this Run did (steps, seconds, final loss); None for `load`.
        self.training = training
        self._snapshots: list[tuple[int, np.ndarray]] | None = None
        #: torch threads while this run samples: 0 = one per core other programs leave free (see difflab.threads).
        self.threads = 0
        self._governor = ThreadGovernor()

    @classmethod
    def of(cls, trained: session.Trained) -> Run:
        """The run a training session left."""
        run = cls(
            trained.model,
            trained.source,
            step=trained.step,
            path=trained.path,
            metrics=trained.metrics,
            data=trained.data,
            checkpoint=trained.checkpoint,
            training=trained.result,
        )
        run._snapshots = trained.snapshots
        return run

    def __repr__(self) -> str:
        where = str(self.path) if self.path else "in memory"
        return f"Run({self.config.data!r}, {self.kind.defaults.name}, step {self.step}, {where})"

    # --- facts ---
    @property
    def config(self) -> TrainConfig:
        """The resolved training options."""
        return self.model.cfg

    @property
    def info(self) -> DataInfo:
        """Item shape, normalization and class names."""
        return self.model.info

    @property
    def class_names(self) -> list[str] | None:
        """Class names of a conditional run (None otherwise)."""
        return self.info.class_names if self.config.conditional else None

    @property
    def metrics(self) -> list[dict[str, Any]]:
        """The training log: one row per `log_every` steps (step, loss, lr, time, elapsed, steps_per_s)."""
        if self._metrics is not None:
            return self._metrics
        return read_metrics(self.path) if self.path else []

    def snapshots(self) -> list[tuple[int, np.ndarray]]:
        """Samples drawn while training (`sample_every`): (step, points in data units or uint8 images)."""
        if self._snapshots is not None:
            return self._snapshots
        if self.path is None:
            return []
        from difflab.monitor import read_snapshots

        return read_snapshots(self.path)

    def data_copy(self) -> dict[str, np.ndarray]:
        """The run's own copy of its training data (point runs from files and runs trained from arrays; a built-in
        set is drawn again instead: `difflab.dataset(name, n, seed)`)."""
        if self._data is None:
            if not self.source.stored:
                raise UserError(f"{self.path or 'this run'} keeps no copy of its data ({self.source.spec})")
            if self.path is None:
                raise UserError("this in-memory run has no data copy")
            self._data = read_data(self.path)
        return self._data

    def to(self, device: DeviceChoice | str | torch.device | None) -> Run:
        """Move the weights to `device` ("cpu", "cuda", "mps", "auto"; None keeps them where they are)."""
        if device is not None:
            target = device if isinstance(device, torch.device) else distributed.resolve_device(str(device))
            self.model.denoiser.to(target)
        return self

    def resolve(self, **sampling: Any) -> Sampling:
        """The sampling options a call would use, with every default filled in."""
        return resolve(_sampling(sampling), self.model, self.kind.defaults.sampling)

    # --- sampling ---
    def labels_for(self, n: int, label: int | str | None, *, every_class: bool = False) -> torch.Tensor | None:
        """n labels of one class (a name, or an index when no class name is an integer), n cycled over all
        classes (`every_class`, conditional runs), or None (unconditional)."""
        names = self.class_names
        if label is None:
            if every_class and names:
                return torch.arange(n, dtype=torch.int64) % len(names)
            return None
        if not names:
            raise UserError("this run was trained without classes, so it cannot sample a class")
        return torch.full((n,), self.class_index(label), dtype=torch.int64)

    def class_index(self, label: int | str) -> int:
        """The index of a class given by name, or by index when no class name is an integer."""
        return class_index(self.class_names or [], label)

    def draw(
        self,
        n: int,
        sampling: Sampling,
        *,
        labels: torch.Tensor | None = None,
        seed: int = 0,
        callback: Any = None,
        progress: bool | None = None,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | np.ndarray | None = None,
    ) -> torch.Tensor:
        """Samples in model units (the kinds' figures and evaluations go through here)."""
        with torch_threads(self.threads, self._governor):
            return draw(
                self.model,
                n,
                sampling,
                labels=labels,
                seed=seed,
                callback=callback,
                progress=progress,
                what=self.kind.defaults.item_name,
                generator=generator,
                noise=noise,
            )

    def sample(
        self,
        n: int,
        *,
        sampler: SamplerName | None = None,
        steps: int | None = None,
        spacing: Spacing | None = None,
        guidance: float | None = None,
        label: int | str | None = None,
        seed: int = 0,
        device: DeviceChoice | str | None = None,
        progress: bool | None = None,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | np.ndarray | None = None,
        **options: Any,
    ) -> np.ndarray:
        """Draw `n` samples: points (n, D) in data units, or images (n, C, H, W) as floats in [0, 1].

        `label` asks for one class (guided with `guidance`); without it a conditional run samples unconditionally.
        Further sampling options (clip, eta, variance, chunk_size) go in `options`. `generator` (a torch.Generator
        on the run's device) replaces the one seeded by `seed`; `noise` is the starting x_T itself, (n, *item
        shape) in model units, e.g. to drive difflab and diffusers from the same noise.
        """
        sampling = self.resolve(sampler=sampler, steps=steps, spacing=spacing, guidance=guidance, **options)
        n, seed = check_number("n", n), check_number("seed", seed)
        progress = check_flag("progress", progress, optional=True)
        self.to(device)
        labels = self.labels_for(n, label)
        x = self.draw(n, sampling, labels=labels, seed=seed, progress=progress, generator=generator, noise=noise)
        return self.kind.output(self.model, x)

    # --- evaluation and figures ---
    def evaluate(
        self,
        *,
        n: int | None = None,
        draws: int | None = None,
        label: int | str | None = None,
        nll: bool = False,
        seed: int = 0,
        device: DeviceChoice | str | None = None,
        progress: bool | None = None,
        save: bool = True,
        **sampling: Any,
    ) -> Evaluation:
        """Measure samples against fresh data, as mean ± spread over `draws` independent draws.

        Points: energy distance next to its floor (independent draws of the data) and k-NN precision and
        recall next to theirs; `nll=True` gives the variational bound in bits/dim instead. Images: the
        requested class's accuracy under a classifier trained on the real images, and the Fréchet distance in
        its feature space next to its floor. Written to RUN/eval.json when the run has a directory (`save`).
        """
        nll, save = check_flag("nll", nll), check_flag("save", save)
        progress = check_flag("progress", progress, optional=True)
        self.to(device)
        if nll:  # the bound belongs to the ancestral chain, also when it is respaced
            sampling.setdefault("sampler", "ddpm")
        resolved = self.resolve(**sampling)
        with torch_threads(self.threads, self._governor):
            result = self.kind.evaluate(
                self, resolved, n=n, draws=draws, label=label, nll=nll, seed=seed, progress=progress
            )
        if save and self.path is not None:
            try:
                result.write(self.path / EVAL, self.step)
            except OSError as e:
                warnings.warn(
                    f"cannot write {self.path / EVAL} ({e.strerror or e}); the results are not saved", stacklevel=2
                )
        return result

    def plot(
        self,
        out: str | Path | None = None,
        *,
        n: int | None = None,
        label: int | str | None = None,
        seed: int = 0,
        device: DeviceChoice | str | None = None,
        progress: bool | None = None,
        **sampling: Any,
    ) -> list[Path]:
        """Write the run's figures as PNGs into `out` (default RUN/plots) and return their paths.

        A conditional run's samples are spread over its classes, or all of class `label`.
        """
        folder = self._output_folder(out, "plots")
        progress = check_flag("progress", progress, optional=True)
        self.to(device)
        resolved = self.resolve(**sampling)
        return self.kind.plot(self, folder, resolved, n=n, label=label, seed=seed, progress=progress)

    def animate(
        self,
        out: str | Path | None = None,
        *,
        n: int | None = None,
        frames: int = ANIMATION_FRAMES,
        label: int | str | None = None,
        seed: int = 0,
        device: DeviceChoice | str | None = None,
        progress: bool | None = None,
        **sampling: Any,
    ) -> Path:
        """Write a GIF of the denoising process to `out` (default RUN/plots/denoising.gif)."""
        if out is None:
            if self.path is None:
                raise UserError("this run has no directory: give animate an output path")
            out = self.path / "plots" / "denoising.gif"
        path = check_path("out", out)
        progress = check_flag("progress", progress, optional=True)
        self.to(device)
        resolved = self.resolve(**sampling)
        return self.kind.animate(self, path, resolved, n=n, frames=frames, label=label, seed=seed, progress=progress)

    def write(
        self,
        text: str,
        *,
        seed: int = 0,
        device: DeviceChoice | str | None = None,
        progress: bool | None = None,
        **sampling: Any,
    ) -> np.ndarray:
        """Render `text` with one class-conditional sample per character (image runs): a uint8 picture, (H, W) for
        grey images and (H, W, C) for colour, that `PIL.Image.fromarray` saves as it is."""
        if not isinstance(text, str):
            raise UserError(f"invalid {setting('text', text, quoted=True)}; expected a string")
        progress = check_flag("progress", progress, optional=True)
        self.to(device)
        return self.kind.write(self, text, self.resolve(**sampling), seed=seed, progress=progress)

    def _output_folder(self, out: str | Path | None, default: str) -> Path:
        if out is not None:
            return check_path("out", out)
        if self.path is None:
            raise UserError(f"this run has no directory: give an output folder for the {default}")
        return self.path / default

    def report(self, *, figures: bool = True, progress: bool | None = None) -> Path:
        """Write RUN/report.html: config, data, timings, loss, evaluation with spread, every figure (one file)."""
        from difflab.report import write_report

        figures = check_flag("figures", figures)
        return write_report(self, figures=figures, progress=check_flag("progress", progress, optional=True))

    def export(self, folder: str | Path) -> Path:
        """Write a diffusers scheduler config and the network (see `difflab.export`); returns the folder."""
        from difflab.export import export_diffusers

        return export_diffusers(self, check_path("folder", folder))

    def distill(
        self,
        out: str | Path | None = None,
        *,
        steps: int = DEFAULT_STUDENT_STEPS,
        method: DistillMethod = DEFAULT_DISTILL_METHOD,
        train_steps: int | None = None,
        progress: bool | None = None,
        callbacks: Sequence[Callback] | None = None,
        **options: Any,
    ) -> Run:
        """Distill this run (the teacher) into a student that samples in `steps` model calls (see `difflab.distill`).

        The student starts from this run's weights and trains for `train_steps` optimizer steps (default:
        `Run.kind.defaults.student_budget` of the teacher's steps); `options` change how (seed, lr, batch_size,
        distill_pairs, and how to run: device, threads, log_every, checkpoint_every). It is a normal run: `sample`,
        `evaluate`, `plot`, `animate` and `export` use its `steps` calls unless told otherwise. With `out`, a folder
        that already holds this student continues from its last checkpoint.
        """
        if self.path is None:
            raise UserError("distilling needs the teacher in a run directory (its path goes into the student): save it")
        if self.config.is_student:
            raise UserError(f"{self.path} is a student already; distill its teacher ({self.config.teacher})")
        folder = None if out is None else check_path("out", out)
        progress = check_flag("progress", progress, optional=True)
        hooks = check_callbacks(callbacks)
        given = {**options, **({} if train_steps is None else {"steps": train_steps})}
        cfg = session.student_config(self.config, self.path, self.kind.defaults, steps, method, given)
        return Run.of(session.fit(self._prepared(cfg), folder, progress=progress, callbacks=hooks))

    def _prepared(self, cfg: TrainConfig) -> session.Prepared:
        """This run's data, through its kind, ready to train `cfg` on (more steps, or a student)."""
        kind = self.kind
        data = kind.from_copy(self.data_copy()) if self.source.stored else kind.load_spec(cfg.data, cfg)
        training_set = kind.training_set(data, cfg, self.source.spec)
        self.source.check(training_set.source, str(self.path or "this run"))
        return session.Prepared(cfg, training_set, self._data)

    # --- persistence and more training ---
    def save(self, path: str | Path) -> Run:
        """Write an in-memory run as a run directory (config, data copy, checkpoint, log) and return it loaded."""
        if self._checkpoint is None:
            raise UserError(f"this run already lives in {self.path}; copy that folder instead")
        target = check_path("path", path)
        record = RunRecord(self.config, self.info, self.source)
        write_run(target, record, self._data if self.source.stored else None, self._checkpoint, self.metrics)
        return load(target)

    def train(
        self, *, progress: bool | None = None, callbacks: Sequence[Callback] | None = None, **changes: Any
    ) -> Run:
        """Continue training from the last checkpoint, e.g. `run.train(steps=20000)`.

        Only options that say how to run may change (steps, log_every, checkpoint_every, sample_every,
        tensorboard, device, threads, compile); the run's data must be unchanged.
        """
        progress = check_flag("progress", progress, optional=True)
        hooks = check_callbacks(callbacks)
        prepared = self._prepared(session.resumed_config(self.config, changes))
        if self.path is not None:
            return Run.of(session.fit(prepared, self.path, progress=progress, must_resume=True, callbacks=hooks))
        return Run.of(session.fit(prepared, None, progress=progress, checkpoint=self._checkpoint, callbacks=hooks))


def train(
    data: str | Path | np.ndarray | torch.Tensor = "moons",
    out: str | Path | None = None,
    *,
    labels: np.ndarray | list[Any] | None = None,
    progress: bool | None = None,
    callbacks: Sequence[Callback] | None = None,
    **options: Any,
) -> Run:
    """Train a diffusion model and return the `Run`.

    `data`: a built-in dataset name (`difflab.datasets()`), a .csv/.npy path, an image set ("mnist5k",
    "digits", "emnist:PATH[:SPLIT]", "images:PATH"), or an array: points (N, D), or images (N, C, H, W) as
    uint8 or floats in [0, 1], with optional `labels` (N,). `options` are the training options of
    `TrainConfig` (steps, target, schedule, conditional, ...). `out=None` trains in memory and writes
    nothing (`Run.save` writes it later); with `out`, a folder that already holds this run's config
    continues from its last checkpoint. `progress`: a bar in a terminal or notebook by default.
    `callbacks`: functions of a `difflab.Event` (each step with its loss, each checkpoint, each snapshot); one
    that returns True ends training there, with a checkpoint (see `difflab.callbacks`).
    """
    folder = None if out is None else check_path("out", out)
    progress = check_flag("progress", progress, optional=True)
    hooks = check_callbacks(callbacks)
    prepared = session.prepare(data, labels, options)
    return Run.of(session.fit(prepared, folder, progress=progress, callbacks=hooks))


def load(path: str | Path, *, device: DeviceChoice | str | None = None) -> Run:
    """Load a run directory written by `difflab train` (or `Run.save`): the EMA weights, ready to sample."""
    run_dir = check_path("path", path)
    record = read_run_record(run_dir)
    weights, step = read_sampling_weights(run_dir)
    model = model_from_weights(record.cfg, record.info, weights, str(run_dir))
    return Run(model, record.source, step=step, path=run_dir).to(device)
