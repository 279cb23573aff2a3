"""The command line's options: the parser, and the option groups built from the library's own tables.

Training options come from `TrainConfig` (one flag per field), defaults that differ per kind of data from the
kinds' `KindDefaults`, so `--help` and the library never disagree.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import fields
from typing import Any, NoReturn, get_args, get_origin, get_type_hints

from difflab.config import OPTION_HELP, STUDENT_OPTIONS, TrainConfig
from difflab.defaults import KindDefaults
from difflab.kinds import registered
from difflab.types import ClipKind, DeviceChoice, SamplerName, Spacing, VarianceKind, choices

EXIT_USER_ERROR = 2


def per_kind(describe: Callable[[KindDefaults], Any], kinds: Sequence[KindDefaults] | None = None) -> str:
    """ "points 3, images 2": one default per kind of data, from the kinds' own tables (one value if all agree)."""
    kinds = registered() if kinds is None else kinds
    values = [(d.name, str(describe(d))) for d in kinds]
    if len({v for _, v in values}) == 1:
        return values[0][1]
    return ", ".join(f"{name} {value}" for name, value in values)


def student_steps_default(d: KindDefaults) -> str:
    """A student's default budget, as `KindDefaults.student_budget` computes it."""
    least = d.distilling.get("steps")
    if least is None:
        return "the teacher's"
    return f"{d.distill_share:g}× the teacher's (at least {least})" if d.distill_share else str(least)


def sampler_default(d: KindDefaults) -> str:
    s = d.sampling
    steps = "all" if s.steps is None else s.steps
    few = f", {s.few_step_sampler} with --steps" if s.few_step_sampler != s.sampler else ""
    ancestral = "all" if s.ancestral_steps is None else s.ancestral_steps
    ddpm = f"; --sampler ddpm alone over {ancestral} steps" if s.ancestral_steps != s.steps else ""
    return f"{s.sampler} over {steps} steps{few}{ddpm}"


def spacing_default(d: KindDefaults) -> str:
    s = d.sampling
    below = f" ({s.few_step_spacing} below {s.few_step_below} steps)" if s.few_step_spacing else ""
    return f"{s.spacing}{below}"


#: The options that size one evaluation draw; each kind of data uses one of them (`KindDefaults.evaluate_size`).
EVALUATE_SIZES = {"n": "items per draw", "per_class": "samples per class and draw"}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see --help)\n")


# --- argument groups ---


def add_config_options(p: argparse.ArgumentParser, names: frozenset[str] | None = None) -> None:
    """One --option per TrainConfig field (of `names` only, when given); values are validated by make_config, in
    one place. The options only distilling sets are left to `difflab distill`."""
    hints = get_type_hints(TrainConfig)
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        if (f.name not in names) if names is not None else f.name in STUDENT_OPTIONS:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        default = _student_default(f.name) if names is not None else _default(f.name, getattr(defaults, f.name))
        if kind is bool:
            p.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=f"{OPTION_HELP[f.name].replace('%', '%%')} (default {default})".strip(),
            )
            continue
        valid = f" {{{','.join(get_args(kind))}}}" if get_origin(kind) is not None else ""
        text = OPTION_HELP[f.name].replace("%", "%%")  # argparse formats help with %
        p.add_argument(
            flag,
            dest=f.name,
            default=argparse.SUPPRESS,
            metavar=f.name.upper(),
            help=f"{valid.strip()} {text} (default {default})".strip(),
        )


def _default(name: str, value: Any) -> str:
    """ "0.002; images 0.001": TrainConfig's default and where a kind or a built-in set differs."""
    default = str(value)
    for data_kind in registered():
        default += "".join(f"; {spec} {v[name]}" for spec, v in data_kind.per_set.items() if name in v)
        if name in data_kind.training:
            default += f"; {data_kind.name} {data_kind.training[name]}"
    return default


def _student_default(name: str) -> str:
    """A student's default: its kind's distilling value, else the teacher's own."""
    values = [f"{d.name} {d.distilling[name]}" for d in registered() if name in d.distilling]
    return "; ".join(values) if values else "the teacher's"


def add_sampling_options(p: argparse.ArgumentParser, *, classes: bool = True) -> None:
    p.add_argument(
        "--sampler",
        choices=choices(SamplerName),
        default=None,
        help="ddpm (ancestral), ddim, euler (a flow run's name for DDIM's step), dpmpp_2m (DPM-Solver++ 2M), "
        "dpmpp_2m_sde (its stochastic form), dpmpp_3m (third order), heun (2K-1 model calls), unipc (2M with the "
        f"UniC corrector) (default: {per_kind(sampler_default)})",
    )
    steps = per_kind(lambda d: "all" if d.sampling.steps is None else d.sampling.steps)
    p.add_argument("--steps", type=int, default=None, help=f"respace to this many steps (default: {steps})")
    p.add_argument(
        "--spacing",
        choices=choices(Spacing),
        default=None,
        help="which timesteps --steps keeps: trailing (equal strides back from T-1), linspace (an even grid from "
        "T-1 down to 0), quadratic (denser at low noise; DDIM's), logsnr (even in log SNR) or karras (even in "
        f"σ^(1/7)); all start at T-1 (default: {per_kind(spacing_default)}; ε and score runs quadratic; learned "
        "schedules trailing)",
    )
    p.add_argument("--eta", type=float, default=None, help="DDIM η: 0 deterministic (default), 1 ancestral-like")
    p.add_argument(
        "--variance",
        choices=choices(VarianceKind),
        default=None,
        help="DDPM reverse variance: small (β̃), large (β), learned (default: the run's)",
    )
    if classes:
        p.add_argument(
            "--class",
            dest="cls",
            default=None,
            help="class name (or index when no class name is an integer) to generate; "
            "without it a conditional run samples unconditionally",
        )
    guidance = per_kind(lambda d: f"{d.sampling.guidance:g}")
    p.add_argument(
        "--guidance",
        type=float,
        default=None,
        help="classifier-free guidance weight w in ε̃ = ε(x,∅) + w·(ε(x,c) − ε(x,∅)): 0 = unconditional, "
        f"1 = plain conditional, >1 = more on-class but less diverse (default {guidance})",
    )
    p.add_argument(
        "--clip",
        choices=choices(ClipKind),
        default=None,
        help="predicted-x0 clipping at each step: none, clip to the data range, or dynamic thresholding "
        f"(Saharia et al. 2022) (default: {per_kind(lambda d: d.sampling.clip or 'the run' + chr(39) + 's --clip')})",
    )
    chunk = per_kind(lambda d: d.sampling.chunk_size)
    p.add_argument("--chunk-size", type=int, default=None, help=f"samples per batch, bounds memory (default {chunk})")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_machine_options(p)


def add_machine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=choices(DeviceChoice), default=None, help="where to sample (default: cpu)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default 0: the cores that are free now)")


def sampling_given(args: argparse.Namespace) -> dict[str, Any]:
    """The sampling options the user gave (None ones are left to the run's defaults)."""
    keys = ("sampler", "steps", "spacing", "eta", "variance", "guidance", "clip", "chunk_size")
    return {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
