"""Sampling options, the one place their defaults are chosen for each kind of run, and chunked drawing.

The CLI, the Python API and the benchmarks all pass what the user asked for (`SamplingOptions`, None meaning
"the default") through `resolve`, which checks it against the run and fills the rest from `DEFAULTS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from difflab.denoiser import Denoiser, DenoiserFn
from difflab.errors import UserError, option, setting
from difflab.limits import check_number, require_memory
from difflab.progress import stage
from difflab.run import TrainedModel
from difflab.samplers import SAMPLERS, Callback
from difflab.schedule import NOISE_SPACINGS, Schedule, noise_spaced_timesteps, spaced_timesteps
from difflab.types import ClipKind, SamplerName, Spacing, VarianceKind, choices


@dataclass(frozen=True)
class SamplingOptions:
    """What the user asked for; None means the run's default (see `DEFAULTS`)."""

    sampler: SamplerName | None = None
    steps: int | None = None
    spacing: Spacing | None = None
    guidance: float | None = None
    clip: ClipKind | None = None
    eta: float | None = None
    variance: VarianceKind | None = None
    chunk_size: int | None = None


@dataclass(frozen=True)
class KindDefaults:
    """Sampling defaults of one kind of run."""

    sampler: SamplerName  # with all the run's steps (or `steps` when set)
    few_step_sampler: SamplerName  # when only --steps K is given
    steps: int | None  # None: every trained step
    spacing: Spacing
    guidance: float
    clip: ClipKind | None  # None: the run's own `clip` option
    chunk_size: int


#: Points: the full ancestral chain (measured best at full length, README "Part 1"); a respaced chain uses
#: DPM-Solver++(2M) on quadratic timesteps, which beat trailing at 10 and 20 steps on moons, circles and complex
#: (benchmarks/RESULTS-samplers.md); guidance 3 (benchmarks/guidance.py). Images: DDIM 50 trailing steps
#: (a 1000-step chain is minutes per grid on a CPU), guidance 2 and clipped x̂0 (benchmarks/RESULTS-mnist5k.md).
#: Images draw 50 at a time: 200 digits (DDIM 50, guidance 2, two threads) came at 2.0–2.1 samples/s in chunks
#: of 50 against 1.4–1.5 in one chunk of 200 (two runs each, side by side).
DEFAULTS: dict[str, KindDefaults] = {
    "points": KindDefaults("ddpm", "dpmpp_2m", None, "quadratic", 3.0, None, 10_000),
    "images": KindDefaults("ddim", "ddim", 50, "trailing", 2.0, "clip", 50),
}

#: A learned (VDM) schedule on moons kept ᾱ > 0.97 until t = 750 of 1000: quadratic steps gave DPM-Solver++ 20 a
#: ratio of 20.4 against 2.02 with trailing, so learned schedules always respace with trailing steps.
LEARNED_SCHEDULE_SPACING: Spacing = "trailing"


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


def kind_of(model: TrainedModel) -> str:
    """ "images" for items (C, H, W), else "points"."""
    return "images" if model.info.is_image else "points"


def _choice(name: str, value: Any, alias: Any) -> Any:
    if value is not None and value not in choices(alias):
        raise UserError(f"invalid {setting(name, value, quoted=True)}; choose one of: {', '.join(choices(alias))}")
    return value


def resolve(options: SamplingOptions, model: TrainedModel) -> Sampling:
    """Check what was asked against the run and fill the rest from the defaults of its kind."""
    _choice("sampler", options.sampler, SamplerName)
    _choice("spacing", options.spacing, Spacing)
    _choice("clip", options.clip, ClipKind)
    _choice("variance", options.variance, VarianceKind)
    kind = DEFAULTS[kind_of(model)]
    total = len(model.schedule)
    steps = options.steps
    if steps is not None:
        steps = check_number("steps", steps)
        if steps > total:
            raise UserError(f"invalid {setting('steps', steps)}; this run has {total} steps, so use 1..{total}")
    # A sampler-specific option names its sampler: a DDPM variance means DDPM, a DDIM η means DDIM.
    implied = "ddpm" if options.variance is not None else "ddim" if options.eta is not None else None
    sampler = options.sampler or implied or (kind.few_step_sampler if options.steps is not None else kind.sampler)
    if steps is None:
        steps = min(kind.steps, total) if kind.steps else total
    if options.eta is not None and sampler != "ddim":
        raise UserError(f"{option('eta')} is DDIM's noise level; it does nothing for sampler {sampler}")
    if options.variance is not None and sampler != "ddpm":
        raise UserError(f"{option('variance')} is DDPM's reverse variance; it does nothing for sampler {sampler}")
    variance = options.variance or model.cfg.sample_variance
    if variance == "learned" and not model.cfg.learned_variance:
        raise UserError(f"{setting('variance', 'learned')} needs a run trained with a learned variance")
    guidance = kind.guidance if options.guidance is None else check_number("guidance", options.guidance)
    if options.guidance is not None and not model.cfg.conditional:
        raise UserError(f"{option('guidance')} weighs classes, and this run was trained without them")
    spacing = options.spacing or (LEARNED_SCHEDULE_SPACING if model.cfg.schedule == "learned" else kind.spacing)
    return Sampling(
        sampler=sampler,
        steps=steps,
        spacing=spacing,
        guidance=guidance,
        clip=options.clip or kind.clip or model.cfg.clip,
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
) -> torch.Tensor:
    """`n` samples in model units (CPU float32), in chunks of `sampling.chunk_size`, on the model's device.

    `labels` (one per sample) are drawn with classifier-free guidance `sampling.guidance`; None samples
    unconditionally. One generator seeded with `seed` drives every chunk, so the result depends only on the
    seed and the chunk size.
    """
    n = check_number("n", n)
    seed = check_number("seed", seed)
    shape = model.info.shape
    per_item = 4 * int(torch.tensor(shape).prod())
    require_memory(per_item * (n + 8 * min(n, sampling.chunk_size)), f"drawing {n} {what}")
    schedule = sampling.schedule(model)
    denoiser = with_clip(model.denoiser, sampling.clip)
    run_model = TrainedModel(model.cfg, model.info, denoiser)
    device = model.device
    generator = torch.Generator(device=device).manual_seed(seed)
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
            fn: DenoiserFn = run_model.bound(None if labels is None else labels[part], sampling.guidance)
            x_T = torch.randn((count, *shape), generator=generator, device=device)
            sampler = SAMPLERS[sampling.sampler]
            x0 = sampler(fn, x_T, schedule, generator=generator, callback=step, **sampling.sampler_kwargs())
            out[part] = x0.float().cpu()
    if not bool(torch.isfinite(out).all()):
        raise UserError(
            f"sampling produced NaN or inf ({sampling.describe()}); nothing was written: try {setting('clip', 'clip')} "
            f"or a smaller {option('guidance')}, or check the run's weights"
        )
    return out
