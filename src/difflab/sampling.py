"""Sampling options, the one place they are checked and completed, and chunked drawing.

The CLI, the Python API and the benchmarks all pass what the user asked for (`SamplingOptions`, None meaning
"the default") through `resolve`, which checks it against the run and fills the rest from the defaults of the
run's kind (`difflab.defaults.SamplingDefaults`, one table per kind).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from difflab.defaults import SamplingDefaults
from difflab.denoiser import Denoiser, DenoiserFn
from difflab.errors import UserError, option, setting, short
from difflab.limits import check_number, require_memory
from difflab.model import TrainedModel
from difflab.progress import stage
from difflab.samplers import SAMPLERS, Callback
from difflab.schedule import NOISE_SPACINGS, Schedule, noise_spaced_timesteps, spaced_timesteps
from difflab.types import ClipKind, SamplerName, Spacing, VarianceKind, choices


@dataclass(frozen=True)
class SamplingOptions:
    """What the user asked for; None means the default of the run's kind."""

    sampler: SamplerName | None = None
    steps: int | None = None
    spacing: Spacing | None = None
    guidance: float | None = None
    clip: ClipKind | None = None
    eta: float | None = None
    variance: VarianceKind | None = None
    chunk_size: int | None = None


#: A learned (VDM) schedule keeps almost no noise for most of its steps, where quadratic spacing puts few steps
#: (benchmarks/RESULTS-learned-schedule.md), so learned schedules always respace with trailing steps.
LEARNED_SCHEDULE_SPACING: Spacing = "trailing"
#: For the same reason a learned schedule samples with its full ancestral chain unless steps are asked for: 20
#: DPM-Solver++ steps were 10 times further from the data (benchmarks/RESULTS-learned-schedule.md).
LEARNED_SCHEDULE_SAMPLER: SamplerName = "ddpm"
#: A student (`difflab.distill`) samples with what its method trained it for, on the trailing steps it trained on,
#: in its own number of calls unless steps are asked for.
STUDENT_SAMPLERS: dict[str, SamplerName] = {"reflow": "ddim", "trajectory": "ddim", "consistency": "consistency"}
STUDENT_SPACING: Spacing = "trailing"


@dataclass(frozen=True)
class Sampling:
    """Fully resolved sampling options for one run."""

    sampler: SamplerName
    steps: int
    spacing: Spacing
    guidance: float
    clip: ClipKind
    eta: float
    variance: VarianceKind
    chunk_size: int
    total: int  # the run's trained steps

    def schedule(self, model: TrainedModel) -> Schedule:
        """The process the sampler walks: the trained one, or `steps` of it."""
        full = model.schedule
        if self.steps == len(full):
            return full
        if self.spacing in NOISE_SPACINGS:
            return full.respace(noise_spaced_timesteps(full, self.steps, self.spacing))
        return full.respace(spaced_timesteps(len(full), self.steps, self.spacing))

    def sampler_kwargs(self) -> dict[str, Any]:
        """The sampler-specific options."""
        if self.sampler == "ddpm":
            return {"variance": self.variance}
        if self.sampler == "ddim":
            return {"eta": self.eta}
        return {}

    def describe(self, conditional: bool = False) -> str:
        """For figure titles and printed lines: 'dpmpp_2m, 20 of 1000 steps (quadratic), guidance 3'."""
        steps = (
            f"all {self.total} steps"
            if self.steps == self.total
            else f"{self.steps} of {self.total} steps ({self.spacing})"
        )
        extra = f", guidance {self.guidance:g}" if conditional else ""
        return f"{self.sampler}, {steps}{extra}"

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _choice(name: str, value: Any, alias: Any) -> Any:
    if value is not None and value not in choices(alias):
        raise UserError(f"invalid {setting(name, value, quoted=True)}; choose one of: {', '.join(choices(alias))}")
    return value


def resolve(options: SamplingOptions, model: TrainedModel, kind: SamplingDefaults) -> Sampling:
    """Check what was asked against the run and fill the rest from the defaults of its kind."""
    _choice("sampler", options.sampler, SamplerName)
    _choice("spacing", options.spacing, Spacing)
    _choice("clip", options.clip, ClipKind)
    _choice("variance", options.variance, VarianceKind)
    total = len(model.schedule)
    steps = options.steps
    if steps is not None:
        steps = check_number("steps", steps)
        if steps > total:
            raise UserError(f"invalid {setting('steps', steps)}; this run has {total} steps, so use 1..{total}")
    # A sampler-specific option names its sampler: a DDPM variance means DDPM, a DDIM η means DDIM.
    implied = "ddpm" if options.variance is not None else "ddim" if options.eta is not None else None
    noise_target = model.cfg.target in ("eps", "score")
    default_sampler = kind.few_step_sampler if options.steps is not None else kind.sampler
    if noise_target and kind.noise_target_sampler:
        default_sampler = kind.noise_target_sampler
    if model.cfg.schedule == "learned" and options.steps is None:
        default_sampler = LEARNED_SCHEDULE_SAMPLER
    student = model.cfg.is_student
    if student:
        default_sampler = STUDENT_SAMPLERS[model.cfg.distill_method]
    sampler = options.sampler or implied or default_sampler
    if steps is None:
        default = kind.ancestral_steps if sampler == "ddpm" else kind.steps
        if student:
            default = model.cfg.student_steps
        if noise_target and kind.noise_target_steps and sampler != "ddpm":
            default = kind.noise_target_steps
        steps = min(default, total) if default else total
    if options.eta is not None and sampler != "ddim":
        raise UserError(f"{option('eta')} is DDIM's noise level; it does nothing for sampler {sampler}")
    if options.variance is not None and sampler != "ddpm":
        raise UserError(f"{option('variance')} is DDPM's reverse variance; it does nothing for sampler {sampler}")
    variance = options.variance or model.cfg.sample_variance
    if variance == "learned" and not model.cfg.learned_variance:
        raise UserError(
            f"{setting('variance', 'learned')} needs a run trained with a learned variance, and this one was not; "
            f"use {setting('variance', 'small')} or large"
        )
    guidance = kind.guidance if options.guidance is None else check_number("guidance", options.guidance)
    if options.guidance is not None and not model.cfg.conditional:
        raise UserError(f"{option('guidance')} weighs classes, and this run was trained without them")
    spacing = (
        options.spacing
        or (STUDENT_SPACING if student else None)
        or (LEARNED_SCHEDULE_SPACING if model.cfg.schedule == "learned" else None)
        or (kind.noise_target_spacing if noise_target else None)
        or (kind.few_step_spacing if steps < kind.few_step_below else None)
        or kind.spacing
    )
    return Sampling(
        sampler=sampler,
        steps=steps,
        spacing=spacing,
        guidance=guidance,
        clip=options.clip
        or (model.cfg.clip if model.cfg.clip != "none" else None)
        or kind.clip
        or (kind.noise_target_clip if noise_target else None)
        or "none",
        eta=0.0 if options.eta is None else check_number("eta", options.eta),
        variance=variance,
        chunk_size=kind.chunk_size if options.chunk_size is None else check_number("chunk_size", options.chunk_size),
        total=total,
    )


def with_clip(denoiser: Denoiser, clip: ClipKind) -> Denoiser:
    """The same network and schedule, clipping x̂0 as asked (a view: no weights are copied)."""
    if clip == denoiser.clip:
        return denoiser
    d = denoiser
    return Denoiser(d.model, d.schedule, d.target, learned_variance=d.learned_variance, clip=clip)


@torch.no_grad()
def draw(
    model: TrainedModel,
    n: int,
    sampling: Sampling,
    *,
    labels: torch.Tensor | None = None,
    seed: int = 0,
    callback: Callback | None = None,
    progress: bool | None = None,
    what: str = "samples",
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
    schedule: Schedule | None = None,
) -> torch.Tensor:
    """`n` samples in model units (CPU float32), in chunks of `sampling.chunk_size`, on the model's device.

    `labels` (one per sample) are drawn with classifier-free guidance `sampling.guidance`; None samples
    unconditionally. One generator seeded with `seed` drives every chunk, so the result depends only on the
    seed and the chunk size. `generator` replaces that generator (it must live on the model's device); `noise`
    gives the starting x_T itself, (n, *item shape), as diffusers' `latents` do. `schedule` replaces the steps
    `sampling` would walk (a student's teacher walks the student's steps among its own).
    """
    n = check_number("n", n)
    seed = check_number("seed", seed)
    shape = model.info.shape
    per_item = 4 * int(torch.tensor(shape).prod())
    require_memory(per_item * (n + 8 * min(n, sampling.chunk_size)), f"drawing {n} {what}")
    schedule = sampling.schedule(model) if schedule is None else schedule
    denoiser = with_clip(model.denoiser, sampling.clip)
    run_model = TrainedModel(model.cfg, model.info, denoiser)
    device = model.device
    if generator is None:
        generator = torch.Generator(device=device).manual_seed(seed)
    elif not isinstance(generator, torch.Generator) or generator.device.type != device.type:
        raise UserError(f"generator must be a torch.Generator on the model's device ({device}), got {short(generator)}")
    if noise is not None:
        noise = _checked_noise(noise, (n, *shape))
    out = torch.empty((n, *shape), dtype=torch.float32)
    chunks = -(-n // sampling.chunk_size)
    desc = f"sampling {n} {what} ({sampling.describe(model.cfg.conditional)})"
    with stage(desc, len(schedule) * chunks, progress) as bar:

        def step(state: dict[str, Any]) -> None:
            bar.update(1)
            if callback is not None:
                callback(state)

        for start in range(0, n, sampling.chunk_size):
            part = slice(start, min(start + sampling.chunk_size, n))
            count = part.stop - part.start
            fn: DenoiserFn = run_model.denoiser_for(None if labels is None else labels[part], sampling.guidance)
            if noise is None:
                x_T = torch.randn((count, *shape), generator=generator, device=device)
            else:
                x_T = noise[part].to(device)
            sampler = SAMPLERS[sampling.sampler]
            x0 = sampler(fn, x_T, schedule, generator=generator, callback=step, **sampling.sampler_kwargs())
            out[part] = x0.float().cpu()
    if not bool(torch.isfinite(out).all()):
        raise UserError(
            f"sampling produced NaN or inf ({sampling.describe()}); nothing was written: try {setting('clip', 'clip')} "
            f"or a smaller {option('guidance')}, or check the run's weights"
        )
    return out


def _checked_noise(noise: object, shape: tuple[int, ...]) -> torch.Tensor:
    """Starting noise as a float32 tensor of `shape`, or a UserError saying what is wrong with it."""
    if not isinstance(noise, (torch.Tensor, np.ndarray)):
        raise UserError(f"noise must be a tensor or array of shape {shape}, got {short(noise)}")
    tensor = torch.as_tensor(noise, dtype=torch.float32)
    if tuple(tensor.shape) != shape:
        raise UserError(f"noise must have shape {shape} (n samples of the run's item shape), got {tuple(tensor.shape)}")
    if not bool(torch.isfinite(tensor).all()):
        raise UserError("noise holds NaN or inf")
    return tensor
