"""Training configuration: one dataclass, validated in one place, read from CLI and TOML/YAML files."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, get_args, get_origin, get_type_hints

import tomllib
import yaml

from difflab.denoiser import ClipKind
from difflab.distributed import DeviceChoice
from difflab.errors import UserError
from difflab.models.mlp import TimeEmbedding
from difflab.models.unet import UNetSize
from difflab.objectives import LossKind, Weighting
from difflab.process import Target
from difflab.samplers import VarianceKind
from difflab.schedule import ScheduleName

Precision = Literal["auto", "fp32", "bf16"]
ModelName = Literal["mlp", "unet"]


@dataclass
class TrainConfig:
    """Everything that defines a training run; written resolved into the run directory."""

    data: str = "moons"
    n_data: int = 20_000
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
    weighting: Weighting = "simple"
    loss: LossKind = "l2"
    min_snr_gamma: float = 5.0
    model: ModelName = "mlp"
    unet_size: UNetSize = "small"
    hidden: int = 128
    depth: int = 3
    time_embedding: TimeEmbedding = "sinusoidal"
    fourier_features: int = 0
    conditional: bool = False
    p_uncond: float = 0.15
    labelled: int = -1
    learned_variance: bool = False
    clip: ClipKind = "none"
    sample_variance: VarianceKind = "small"
    log_every: int = 50
    checkpoint_every: int = 1000
    device: DeviceChoice = "auto"
    precision: Precision = "auto"
    compile: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: What the less obvious options mean, for `difflab train --help`.
OPTION_HELP = {
    "model": "mlp for points, unet for images (C, H, W with H, W divisible by 4)",
    "unet_size": "small (~0.8M parameters, CPU) or base (~5.3M, GPU)",
    "target": "what the network predicts; every sampler works with any of them",
    "weighting": "per-timestep loss weight: simple = uniform on the target's error; elbo = ½(SNR_{t-1} - SNR_t) "
    "and min_snr = min(SNR, γ) on the x0 error, converted to the target",
    "time_embedding": "scalar: t as one more input (the series' Part 1 MLP); sinusoidal: Vaswani et al. embedding",
    "fourier_features": "number of random Fourier features of the input coordinates (0 = none)",
    "conditional": "train with class labels and a learned 'no label' entry, for classifier-free guidance",
    "p_uncond": "probability that a training label is replaced by 'no label' (classifier-free guidance)",
    "labelled": "keep the labels of only this many random training points, the rest 'no label' (-1 = all)",
    "clip": "default clipping of predicted x0 when sampling: none, clip to [-1, 1], or dynamic thresholding",
}

# Options that say how and where to run, not what is trained: a resumed run may change them.
RESUMABLE_CHANGES = frozenset({"steps", "log_every", "checkpoint_every", "device", "compile"})


POSITIVE_INTS = (
    "n_data",
    "steps",
    "batch_size",
    "timesteps",
    "hidden",
    "depth",
    "log_every",
    "checkpoint_every",
)


def _coerce(name: str, kind: Any, value: Any) -> Any:
    """Check one value against its field type; raise UserError listing valid choices."""
    if get_origin(kind) is Literal:
        choices = get_args(kind)
        if value not in choices:
            raise UserError(f"invalid {name} {value!r}; choose one of: {', '.join(map(str, choices))}")
        return value
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise UserError(f"invalid {name} {value!r}; expected true or false")
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise UserError(f"invalid {name} {value!r}; expected an integer")
        try:
            return int(value)
        except ValueError:
            raise UserError(f"invalid {name} {value!r}; expected an integer") from None
    if kind is float:
        try:
            out = float(value)
        except (TypeError, ValueError):
            raise UserError(f"invalid {name} {value!r}; expected a number") from None
        if out != out or out in (float("inf"), float("-inf")):
            raise UserError(f"invalid {name} {value!r}; expected a finite number")
        return out
    if kind is str:
        return str(value)
    raise AssertionError(f"unhandled field type {kind}")


def _check_learned_schedule(values: dict[str, Any]) -> None:
    """The learned schedule trains on the VDM bound (Kingma et al. 2021, eq. 17), which fixes the loss."""
    if values["learned_variance"]:
        raise UserError(
            "--schedule learned trains on the continuous-time VDM bound, which has no variance term; "
            "drop --learned-variance"
        )
    changed = [k for k in ("weighting", "loss") if values[k] != getattr(TrainConfig, k)]
    if changed:
        given = ", ".join(f"--{k} {values[k]}" for k in changed)
        raise UserError(f"--schedule learned trains on the VDM bound, so {given} does not apply; drop it")


def make_config(values: dict[str, Any], base: TrainConfig | None = None) -> TrainConfig:
    """Build a validated TrainConfig from `base` (or defaults) overridden by `values`."""
    hints = get_type_hints(TrainConfig)
    names = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise UserError(f"unknown option(s) {', '.join(unknown)}; valid options: {', '.join(sorted(names))}")
    merged = (base or TrainConfig()).to_dict()
    for key, value in values.items():
        merged[key] = _coerce(key, hints[key], value)
    for key in POSITIVE_INTS:
        if merged[key] < 1:
            raise UserError(f"invalid {key} {merged[key]}; must be at least 1")
    if merged["timesteps"] < 2:
        raise UserError("invalid timesteps; must be at least 2")
    if not 0.0 <= merged["p_uncond"] < 1.0:
        raise UserError(f"invalid p_uncond {merged['p_uncond']}; must be in [0, 1)")
    if merged["labelled"] < -1:
        raise UserError(f"invalid labelled {merged['labelled']}; use -1 for all labels or k ≥ 0 labelled points")
    if not 0.0 <= merged["ema_decay"] < 1.0:
        raise UserError(f"invalid ema_decay {merged['ema_decay']}; must be in [0, 1)")
    if merged["lr"] <= 0:
        raise UserError(f"invalid lr {merged['lr']}; must be positive")
    if merged["schedule"] == "learned":
        _check_learned_schedule(merged)
    return TrainConfig(**merged)


def read_config_file(path: Path) -> dict[str, Any]:
    """Options from a TOML, YAML or JSON file (keys are option names, '-' or '_')."""
    if not path.is_file():
        raise UserError(f"{path}: config file not found")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            raw = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            raw = yaml.safe_load(text) or {}
        elif path.suffix == ".json":
            raw = json.loads(text)
        else:
            raise UserError(f"{path}: unknown config format; use .toml, .yaml or .json")
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{path}: cannot parse config ({first})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: config must be a table of option = value")
    return {str(k).replace("-", "_"): v for k, v in raw.items()}
