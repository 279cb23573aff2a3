"""Training configuration: one dataclass, validated in one place, read from keywords, flags and TOML/YAML/JSON files."""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import yaml

from difflab.errors import UserError, option, setting
from difflab.limits import BOUNDS, check_number
from difflab.types import (
    ClipKind,
    DeviceChoice,
    DistillMethod,
    LossKind,
    ModelName,
    Precision,
    ScheduleName,
    Target,
    TimeEmbedding,
    UNetSize,
    VarianceKind,
    Weighting,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run; written resolved into the run directory."""

    data: str = "moons"
    n_data: int = 200_000
    seed: int = 0
    steps: int = 15_000
    batch_size: int = 512
    lr: float = 2e-3
    lr_warmup: int = 100
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    schedule: ScheduleName = "cosine"
    timesteps: int = 1000
    target: Target = "v"
    continuous_time: bool = False
    weighting: Weighting = "simple"
    loss: LossKind = "l2"
    min_snr_gamma: float = 5.0
    model: ModelName = "mlp"
    unet_size: UNetSize = "small"
    hidden: int = 128
    depth: int = 3
    time_embedding: TimeEmbedding = "sinusoidal"
    fourier_features: int = 64
    conditional: bool = False
    p_uncond: float = 0.15
    labelled: int = -1
    label_column: str = "label"
    learned_variance: bool = False
    clip: ClipKind = "none"
    sample_variance: VarianceKind = "small"
    log_every: int = 50
    checkpoint_every: int = 1000
    sample_every: int = 0
    tensorboard: bool = False
    device: DeviceChoice = "auto"
    threads: int = 0
    precision: Precision = "auto"
    compile: bool = False
    teacher: str = ""
    distill_method: DistillMethod = "reflow"
    student_steps: int = 0
    distill_pairs: int = 0
    teacher_steps: int = 0

    @property
    def is_student(self) -> bool:
        """Whether this run was distilled from a teacher run (`difflab distill`)."""
        return bool(self.teacher)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> TrainConfig:
        """A validated copy with `changes` applied."""
        return make_config(changes, base=self)


OPTION_NAMES = frozenset(f.name for f in fields(TrainConfig))

#: What every option means: the one text `difflab train --help`, `help(difflab.TrainConfig)` and docs/api.md show.
OPTION_HELP = {
    "data": "a built-in dataset (difflab datasets), a .csv/.npy file, or an image set (mnist5k, digits, "
    "emnist:PATH[:SPLIT], images:PATH)",
    "n_data": "points drawn from a built-in point dataset (files use all their rows); a model learns the draw it "
    "is given, so more is closer to the set itself",
    "seed": "seed of every random choice (initial weights, data order, noise, label dropout)",
    "steps": "optimizer steps to train for",
    "batch_size": "items per optimizer step (split over processes under torchrun)",
    "lr": "peak learning rate of AdamW (after warm-up, then cosine decay to 10% of it)",
    "lr_warmup": "steps of linear learning-rate warm-up",
    "grad_clip": "largest gradient norm; larger gradients are scaled down (0 = no clipping)",
    "ema_decay": "decay of the exponential moving average of the weights that sampling uses",
    "schedule": "noise schedule: cosine, linear, sigmoid, series (the tutorial's), flow (α = 1 - t, σ = t; what "
    "target flow trains on), or learned (VDM)",
    "timesteps": "number of diffusion steps T",
    "target": "what the network predicts: x0, eps, v, score, or flow (the velocity ε - x0 of flow matching, on "
    "the flow schedule); every sampler works with any of them",
    "continuous_time": "draw training times uniformly from (0, 1] on the schedule's closed form instead of from "
    "its T steps (sampling still walks the T steps)",
    "weighting": "per-timestep loss weight: simple = uniform on the target's error; elbo = ½(SNR_{t-1} - SNR_t) "
    "and min_snr = min(SNR, γ) on the x0 error, converted to the target",
    "loss": "l2 (mean squared error) or huber on the weighted target error",
    "min_snr_gamma": "γ of min_snr weighting (Hang et al. 2023)",
    "model": "mlp for points, unet for images (C, H, W with H, W divisible by 4; the default for images)",
    "unet_size": "small (~0.8M parameters, CPU) or base (~5.3M, GPU)",
    "hidden": "width of the MLP's hidden layers",
    "depth": "number of the MLP's hidden blocks",
    "time_embedding": "scalar: t as one more input (the series' Part 1 MLP); sinusoidal: Vaswani et al. embedding",
    "fourier_features": "number of random Fourier features of the input coordinates (0 = none); they let the MLP "
    "draw small circles and thin structures sharply (benchmarks/README.md)",
    "conditional": "train with class labels and a learned 'no label' entry, for classifier-free guidance",
    "p_uncond": "probability that a training label is replaced by 'no label' (classifier-free guidance)",
    "labelled": "keep the labels of only this many random training points, the rest 'no label' (-1 = all)",
    "label_column": "the column of a CSV file or DataFrame that holds class labels (the others hold numbers)",
    "learned_variance": "also learn the reverse-process variance (Nichol & Dhariwal 2021, the hybrid loss)",
    "clip": "default clipping of predicted x0 when sampling: none, clip to [-1, 1], or dynamic thresholding",
    "sample_variance": "default DDPM reverse variance: small (β̃), large (β), or learned (needs learned_variance)",
    "log_every": "steps between rows of RUN/metrics.jsonl (and progress lines in a log)",
    "checkpoint_every": "steps between checkpoints (one is also written at the end and on Ctrl-C)",
    "sample_every": "every this many steps, draw samples into RUN/progress/ for a figure strip and GIF (0 = off)",
    "tensorboard": "also log loss, learning rate and progress figures to RUN/tensorboard (pip install tensorboard)",
    "device": "where to train: auto (a GPU when there is one), cpu, cuda or mps",
    "threads": "torch intra-op threads (0 = choose from the cores that are free now)",
    "precision": "auto (bf16 autocast on CUDA, float32 elsewhere), fp32, or bf16 everywhere; the loss and the "
    "weights stay float32",
    "compile": "run the network through torch.compile while training (a GPU speed-up; it compiles first)",
    "teacher": "a student's teacher: the run directory it was distilled from (set by difflab distill)",
    "distill_method": "how a student learns from its teacher: reflow (the teacher's noise-to-sample pairs) or "
    "consistency (consistency distillation)",
    "student_steps": "a student's model calls per sample: its default --steps (set by difflab distill)",
    "distill_pairs": "the teacher's samples a trajectory or reflow student learns from",
    "teacher_steps": "steps of the teacher's trajectory for a trajectory student (quadratic, with the student's "
    "own added; reflow draws with the teacher's default sampler)",
}

#: The options only `difflab distill` sets: `difflab train` neither shows nor takes them.
STUDENT_OPTIONS = frozenset({"teacher", "distill_method", "student_steps", "distill_pairs", "teacher_steps"})
#: A student's calls and method when none are asked for (benchmarks/RESULTS-distill.md).
DEFAULT_STUDENT_STEPS = 4
DEFAULT_DISTILL_METHOD: DistillMethod = "trajectory"


def _document_fields() -> None:
    """help(TrainConfig) lists every option with its default and OPTION_HELP's text."""
    defaults = TrainConfig()
    lines = [f"    {f.name} = {getattr(defaults, f.name)!r}: {OPTION_HELP[f.name]}" for f in fields(TrainConfig)]
    TrainConfig.__doc__ = f"{TrainConfig.__doc__}\n\n    Options:\n" + "\n".join(lines)


_document_fields()

#: Options that say how and where to run, not what is trained: a resumed run may change them.
RESUMABLE_CHANGES = frozenset(
    {"steps", "log_every", "checkpoint_every", "sample_every", "tensorboard", "device", "threads", "compile"}
)


#: What a student may set besides its calls and method: how it trains and where it runs.
DISTILL_OPTIONS = frozenset(
    {"seed", "lr", "lr_warmup", "batch_size", "grad_clip", "ema_decay", "distill_pairs", "teacher_steps", "precision"}
) | (RESUMABLE_CHANGES - {"steps", "sample_every"})


#: Text options whose empty value means "none": a run that is not a student has no teacher.
MAY_BE_EMPTY = frozenset({"teacher"})


def _coerce(name: str, kind: Any, value: Any) -> Any:
    """Check one value against its field type; raise UserError listing valid choices."""
    if get_origin(kind) is Literal:
        valid = get_args(kind)
        if not isinstance(value, str) or value not in valid:
            raise UserError(f"invalid {setting(name, value, quoted=True)}; choose one of: {', '.join(map(str, valid))}")
        return value
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise UserError(f"invalid {setting(name, value, quoted=True)}; expected true or false")
    if kind in (int, float):
        return check_number(name, value, BOUNDS[name])
    if kind is str:
        if not isinstance(value, str):
            raise UserError(f"invalid {setting(name, value, quoted=True)}; expected a string")
        if (not value and name not in MAY_BE_EMPTY) or "\x00" in value:
            raise UserError(f"invalid {setting(name, value, quoted=True)}; expected a non-empty string")
        return value
    raise AssertionError(f"unhandled field type {kind}")


def _flow_path(values: dict[str, Any], given: set[str]) -> None:
    """A flow target lives on the flow path: take it when no schedule was asked for; else say what to use."""
    if values["target"] == "flow" and values["schedule"] != "flow":
        if "schedule" in given:
            raise UserError(
                f"{setting('target', 'flow')} is the velocity of the linear interpolant α = 1 - t, σ = t, so it "
                f"trains on {setting('schedule', 'flow')}, not {setting('schedule', values['schedule'])}; drop "
                f"{option('schedule')}, or keep the schedule and use {setting('target', 'v')}"
            )
        values["schedule"] = "flow"


def _check_combinations(values: dict[str, Any]) -> None:
    """Options that are valid alone but not together."""
    if values["schedule"] == "flow":
        if values["target"] in ("eps", "score"):
            raise UserError(
                f"{setting('schedule', 'flow')} ends in pure noise (α = 0), where "
                f"{setting('target', values['target'])} cannot tell the data from the noise; use "
                f"{setting('target', 'flow')}, v or x0"
            )
        if values["learned_variance"]:
            raise UserError(
                f"{option('learned_variance')} (Nichol & Dhariwal's hybrid loss) is defined for variance-preserving "
                f"schedules, not {setting('schedule', 'flow')}; drop it"
            )
    if values["schedule"] == "learned":
        # The learned schedule trains on the VDM bound (Kingma et al. 2021, eq. 17), which fixes the loss.
        if values["learned_variance"]:
            raise UserError(
                f"{setting('schedule', 'learned')} trains on the continuous-time VDM bound, which has no variance "
                f"term; drop {option('learned_variance')}"
            )
        changed = [k for k in ("weighting", "loss") if values[k] != getattr(TrainConfig, k)]
        if changed:
            given = ", ".join(setting(k, values[k]) for k in changed)
            learned = setting("schedule", "learned")
            raise UserError(f"{learned} trains on the VDM bound, so {given} does not apply; drop it")
    if values["continuous_time"]:
        why = {
            "schedule": "the learned schedule trains in continuous time already (the VDM bound)",
            "weighting": "the ELBO weight is defined per step; use simple or min_snr",
            "learned_variance": "the variance term is defined per step",
        }
        for key, value in (("schedule", "learned"), ("weighting", "elbo"), ("learned_variance", True)):
            if values[key] == value:
                raise UserError(f"{option('continuous_time')} does not apply with {setting(key, value)}: {why[key]}")
    _check_student(values)
    if values["sample_variance"] == "learned" and not values["learned_variance"]:
        learned = setting("sample_variance", "learned")
        raise UserError(f"{learned} needs a model trained with {option('learned_variance')}")
    if values["labelled"] >= 0 and not values["conditional"]:
        raise UserError(f"{option('labelled')} keeps some class labels, so it needs {option('conditional')}")


def _check_student(values: dict[str, Any]) -> None:
    """A student has a teacher and a number of calls; a teacher must predict something a few steps can use."""
    if not values["teacher"]:
        if values["student_steps"]:
            raise UserError(f"{option('student_steps')} belongs to a student; make one with difflab distill")
        return
    if values["student_steps"] < 1:
        raise UserError(f"a student needs {option('student_steps')} of at least 1")
    if values["target"] in ("eps", "score"):
        raise UserError(
            f"a teacher trained with {setting('target', values['target'])} predicts x0 as (x - σ ε)/α, which blows "
            f"up in the one or two noisiest steps a student takes; distill a run trained with target v, x0 or flow"
        )
    if values["schedule"] == "learned":
        raise UserError(f"a teacher with {setting('schedule', 'learned')} cannot be distilled; use a fixed schedule")


def make_config(values: dict[str, Any], base: TrainConfig | None = None) -> TrainConfig:
    """Build a validated TrainConfig from `base` (or defaults) overridden by `values`."""
    hints = get_type_hints(TrainConfig)
    unknown = sorted(set(values) - OPTION_NAMES)
    if unknown:
        raise UserError(f"unknown option(s) {', '.join(unknown)}; valid options: {', '.join(sorted(OPTION_NAMES))}")
    merged = (base or TrainConfig()).to_dict()
    for key, value in values.items():
        merged[key] = _coerce(key, hints[key], value)
    _flow_path(merged, set(values))
    _check_combinations(merged)
    return TrainConfig(**merged)


#: A config file is a short table of options; anything bigger or deeper is not one (and a YAML alias bomb is
#: caught by the node count before anything walks its expansion).
MAX_CONFIG_BYTES = 1 << 20
MAX_CONFIG_NODES = 10_000
MAX_CONFIG_DEPTH = 8


def _check_size(value: Any, path: Path) -> None:
    """Walk the parsed file counting nodes (aliases counted every time), stopping early past the limits."""
    budget = [MAX_CONFIG_NODES]

    def walk(v: Any, depth: int) -> None:
        budget[0] -= 1
        if budget[0] < 0 or depth > MAX_CONFIG_DEPTH:
            raise UserError(f"{path}: config is too large or too deeply nested to be a table of options")
        children = v.values() if isinstance(v, dict) else v if isinstance(v, list) else ()
        for child in children:
            walk(child, depth + 1)

    walk(value, 0)


def read_config_file(path: Path) -> dict[str, Any]:
    """Options from a TOML, YAML or JSON file (keys are option names, '-' or '_')."""
    if path.is_dir():
        raise UserError(f"{path}: is a folder; give the config file itself (.toml, .yaml or .json)")
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    if path.suffix not in (".toml", ".yaml", ".yml", ".json"):
        raise UserError(f"{path}: unknown config format; use .toml, .yaml or .json")
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise UserError(f"{path}: config file is over {MAX_CONFIG_BYTES // 1024} KB; it should be a short table")
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: config file is not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read config file ({e.strerror or e})") from None
    try:
        if path.suffix == ".toml":
            raw = tomllib.loads(text)  # TOML itself refuses a key given twice
        elif path.suffix == ".json":
            raw = json.loads(text, object_pairs_hook=_unique_keys)
        else:
            raw = yaml.load(text, Loader=_UniqueKeyLoader) or {}
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError, RecursionError, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{path}: cannot parse config ({first})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: config must be a table of option = value")
    _check_size(raw, path)
    options: dict[str, Any] = {}
    for key, value in raw.items():
        name = str(key).replace("-", "_")
        if name in options:
            raise UserError(f"{path}: option {name} is given twice ({key!r} and another spelling)")
        if name not in OPTION_NAMES:
            hint = f"; give --{name.replace('_', '-')} on the command line" if name in COMMAND_LINE_ONLY else ""
            raise UserError(f"{path}: {key!r} is not a training option{hint} (see difflab train --help)")
        options[name] = value
    return options


#: What `difflab train` takes on its command line but never from a config file.
COMMAND_LINE_ONLY = frozenset({"out", "resume", "config"})


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different (json itself keeps the last of two)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} is given twice")
        out[key] = value
    return out


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a mapping with a key given twice (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)
