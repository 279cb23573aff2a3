"""One training session: data → config → model → trainer → a run directory (or memory).

`prepare` turns what the user gave (a spec or an array, labels, options) into a validated config and a
training set through the data's kind; `fit` trains it, continuing what `out` already holds, and returns a
`Trained` that the API wraps as a `difflab.Run`. The CLI and the API both train through here.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import difflab.distributed as distributed
from difflab.callbacks import Callback, Event, emit
from difflab.config import (
    DISTILL_OPTIONS,
    OPTION_NAMES,
    RESUMABLE_CHANGES,
    STUDENT_OPTIONS,
    TrainConfig,
    make_config,
)
from difflab.data.tables import from_table, is_table
from difflab.data.training_set import DataSource, TrainingSet
from difflab.defaults import KindDefaults
from difflab.distill import Teacher
from difflab.errors import UserError, option, setting
from difflab.kind import Kind
from difflab.kinds import kind_for_array, kind_for_info, kind_for_spec
from difflab.limits import require_disk, require_memory
from difflab.model import TrainedModel, model_from_weights, training_bytes
from difflab.run import CONFIG, RunLock, RunRecord, RunStore, read_run_record, read_sampling_weights
from difflab.sampling import SamplingOptions, resolve
from difflab.threads import torch_threads
from difflab.trainer import Trainer, TrainResult
from difflab.training_state import Checkpoint, MemoryStore, Store


@dataclass
class Trained:
    """What a session leaves: the sampling model (a copy of the EMA weights), its data source and step, and
    either its run directory or (trained in memory) its log and last checkpoint."""

    model: TrainedModel
    source: DataSource
    step: int
    result: TrainResult
    path: Path | None = None
    data: dict[str, np.ndarray] | None = None
    metrics: list[dict[str, Any]] | None = None
    checkpoint: Checkpoint | None = None
    snapshots: list[tuple[int, np.ndarray]] | None = None


@dataclass
class Prepared:
    """A validated config, its training set, and the copy of the data the run keeps (None when it keeps none)."""

    cfg: TrainConfig
    training_set: TrainingSet
    data: dict[str, np.ndarray] | None


def prepare(data: str | Path | np.ndarray | torch.Tensor, labels: Any, options: dict[str, Any]) -> Prepared:
    """Resolve the data through its kind and build the config: the kind's defaults, then the user's options."""
    if "data" in options:
        raise UserError("give the data as the first argument, not as an option")
    student = sorted(STUDENT_OPTIONS & set(options))
    if student:
        raise UserError(f"{', '.join(student)}: set by distilling a trained run (difflab distill, Run.distill)")
    columns = None
    if is_table(data):
        data, labels, columns = from_table(data, labels, str(options.get("label_column", TrainConfig.label_column)))
    if not isinstance(data, (str, Path, np.ndarray, torch.Tensor)):
        given = setting("data", data, quoted=True)
        raise UserError(f"invalid {given}; expected a dataset name, a file path, an array or a DataFrame")
    kind: Kind
    if labels is not None and "conditional" not in options:
        options = {**options, "conditional": True}  # labels mean conditioning; said when training starts
    if isinstance(data, (np.ndarray, torch.Tensor)):
        array = data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else data
        kind = kind_for_array(array)
        spec = "array"
        cfg = make_config({**kind.defaults.training_for(spec), **options, "data": spec})
        if labels is not None and not cfg.conditional:
            raise UserError("labels were given with conditional=False; drop the labels, or train with conditional=True")
        loaded = kind.from_array(array, labels, columns)
    else:
        if labels is not None:
            raise UserError("labels go with an array; files and built-in sets carry their own")
        kind = kind_for_spec(str(data))
        spec = kind.absolute_spec(str(data))
        cfg = make_config({**kind.defaults.training_for(spec), **options, "data": spec})
        loaded = kind.load_spec(spec, cfg)
    training_set = kind.training_set(loaded, cfg, spec)
    cfg = kind.settle_config(cfg, training_set)
    require_memory(training_bytes(cfg, training_set.info, training_set.source.n_items), "training this model")
    return Prepared(cfg, training_set, kind.data_copy(loaded) if training_set.source.stored else None)


def resumed_config(stored: TrainConfig, changes: dict[str, Any]) -> TrainConfig:
    """`stored` with how-to-run changes; a change to what is trained is a UserError naming it."""
    unknown = sorted(set(changes) - OPTION_NAMES)
    if unknown:
        raise UserError(f"unknown option(s) {', '.join(unknown)}; valid options: {', '.join(sorted(OPTION_NAMES))}")
    candidate = make_config(changes, base=stored)
    differ = sorted(k for k in changes if k not in RESUMABLE_CHANGES and getattr(candidate, k) != getattr(stored, k))
    if differ:
        allowed = ", ".join(option(k) for k in sorted(RESUMABLE_CHANGES))
        raise UserError(f"a resumed run keeps its config; only {allowed} can change (got {', '.join(differ)})")
    return candidate


def student_config(
    teacher: TrainConfig,
    path: Path,
    defaults: KindDefaults,
    calls: int,
    method: str,
    options: dict[str, Any],
) -> TrainConfig:
    """A student's config: the teacher's, with its kind's distilling defaults and the few options a student may
    change (`DISTILL_OPTIONS`; `steps` is its training budget, by default `defaults.student_budget`); its calls,
    method and teacher are recorded."""
    unknown = sorted(set(options) - DISTILL_OPTIONS - {"steps"})
    if unknown:
        valid = ", ".join(sorted(DISTILL_OPTIONS))
        raise UserError(f"option(s) {', '.join(unknown)} cannot change when distilling; valid: {valid}")
    budget = {"steps": defaults.student_budget(teacher.steps)}
    changes = {**defaults.distilling, **budget, "continuous_time": False, "sample_every": 0, **options}
    student = {"teacher": str(path.absolute()), "student_steps": calls, "distill_method": method}
    return make_config({**changes, **student}, base=teacher)


def fit(
    prepared: Prepared,
    out: Path | None,
    *,
    progress: bool | None,
    must_resume: bool = False,
    checkpoint: Checkpoint | None = None,
    callbacks: Sequence[Callback] = (),
) -> Trained:
    """Train into `out` (or memory), continuing what is there; the one training path of the API and the CLI."""
    cfg, training_set, data = prepared.cfg, prepared.training_set, prepared.data
    if out is not None and data is not None:
        require_disk(sum(a.nbytes for a in data.values()), out, "the run's copy of its data")
    world, device = distributed.start(cfg.device)
    lock = RunLock(out) if out is not None and world.is_main else None
    try:
        error = None
        if lock is not None:
            try:
                lock.acquire()
            except UserError as e:
                error = str(e)
        world.check(error)
        record = RunRecord(cfg, training_set.info, training_set.source)
        store: Store
        if out is not None:
            resuming = _check_existing(out, record, must_resume)
            store = RunStore(out, record, data) if world.is_main else MemoryStore()
        else:
            resuming = checkpoint is not None
            memory = MemoryStore()
            memory.checkpoint = copy.deepcopy(checkpoint)
            store = memory
        with torch_threads(cfg.threads):
            teacher = load_teacher(cfg, progress) if cfg.is_student else None
            trainer = Trainer(
                cfg, training_set, store, world=world, device=device, where=str(out or "memory"), teacher=teacher
            )
            if world.is_main and not resuming and progress is not False:
                _announce(trainer)
            if resuming and not trainer.restore() and must_resume:
                raise UserError(f"{out}: nothing to resume (no checkpoint yet)")
            monitor = _monitor(cfg, training_set, out, world.is_main)
            hooks: dict[str, Any] = {}
            if monitor is not None:

                def sampled(step: int, ema: Any) -> bool:
                    monitor.sampled(step, ema)
                    return emit(callbacks, Event("snapshot", step, samples=monitor.snapshots[-1][1]))

                hooks = {"on_log": monitor.logged, "on_sample": sampled}
            result = trainer.fit(progress=progress, callbacks=callbacks, **hooks)
            if monitor is not None:
                monitor.close()
            distributed.finish(world)
    finally:
        if lock is not None:
            lock.release()
        distributed.stop(world)
    weights = {k: v.detach().clone() for k, v in trainer.ema.state_dict().items()}
    model = model_from_weights(trainer.cfg, training_set.info, weights, str(out or "memory"))
    model.denoiser.to(trainer.device)
    trained = Trained(model, training_set.source, trainer.step, result, path=out, data=data)
    if out is None and isinstance(store, MemoryStore):
        trained.metrics, trained.checkpoint = list(store.metrics), store.checkpoint
        trained.snapshots = None if monitor is None else monitor.snapshots
    return trained


def load_teacher(cfg: TrainConfig, progress: bool | None = None) -> Teacher:
    """A student's teacher, read from the run directory its config names, with its kind's default sampling."""
    path = Path(cfg.teacher)
    try:
        record = read_run_record(path)
        weights, _ = read_sampling_weights(path)
        model = model_from_weights(record.cfg, record.info, weights, str(path))
    except UserError as e:
        raise UserError(f"cannot read this student's teacher: {e}") from None
    sampling = resolve(SamplingOptions(), model, kind_for_info(record.info).defaults.sampling)
    return Teacher(model, sampling, str(path), progress)


def _announce(trainer: Trainer) -> None:
    count = sum(p.numel() for p in trainer.model.parameters())
    classes = trainer.info.class_names
    conditional = f", conditional on {len(classes)} classes ({', '.join(classes[:8])})" if classes else ""
    cfg = trainer.cfg
    if cfg.is_student:
        calls = f"{cfg.student_steps} model call{'s' if cfg.student_steps > 1 else ''}"
        what = f"a {cfg.distill_method} student of {cfg.teacher} that samples in {calls}: {cfg.model}"
    else:
        what = cfg.model
    print(f"{trainer.command}: {what} with {count:,} parameters{conditional}", file=sys.stderr, flush=True)


def _check_existing(out: Path, record: RunRecord, must_resume: bool) -> bool:
    """Whether `out` holds this run to continue; another config or other data there is a UserError."""
    if not (out / CONFIG).exists():
        if must_resume:
            raise UserError(f"{out}: not a run directory (no {CONFIG}); nothing to resume")
        return False
    stored = read_run_record(out)
    differ = [k for k in sorted(OPTION_NAMES - RESUMABLE_CHANGES) if getattr(stored.cfg, k) != getattr(record.cfg, k)]
    if differ:
        shown = "; ".join(
            f"{k}: {getattr(stored.cfg, k)!r} in the run, {getattr(record.cfg, k)!r} now" for k in differ[:3]
        )
        raise UserError(f"{out} already holds a run with another config ({shown}); use another output folder")
    stored.source.check(record.source, str(out))
    return True


def _monitor(cfg: TrainConfig, training_set: TrainingSet, out: Path | None, main: bool) -> Any:
    """Progress snapshots and TensorBoard, when asked for (rank 0 only); None otherwise."""
    if not main or not (cfg.sample_every or cfg.tensorboard):
        return None
    from difflab.monitor import TrainingMonitor

    return TrainingMonitor(cfg, training_set, out)
