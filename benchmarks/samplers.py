"""Few-step sampling, learned variance and diffusers, on the same trained models.

    python benchmarks/samplers.py [--train-steps N] [--n 2000] [--spacing S] [--set target=eps] [--clip clip]

For moons, circles and complex it trains one learned-variance model at the default config (v target,
cosine, T = 1000; the hybrid loss L_simple + 0.001·L_vlb) and reports, per sampler × steps, the
quality ratio (energy distance to fresh data / the mean distance of four independent draws of the
data, as `difflab evaluate`; 1 is perfect) and the wall time to draw `n` samples. On moons it
also drives the same network with diffusers' DDPM/DDIM/DPMSolverMultistep schedulers (samples/s and
ratio at equal steps), and compares bits/dim of the learned-variance model with a fixed-variance
model trained the same way. One CPU thread throughout, so timings do not depend on machine load
from other processes as much.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

from difflab.cli import FLOOR_DRAWS, POINT_SPACING
from difflab.config import make_config
from difflab.data.source import load_points
from difflab.denoiser import CLIP_KINDS
from difflab.metrics import quality
from difflab.run import LoadedRun, latest_checkpoint_dir, load_run
from difflab.samplers import SAMPLERS
from difflab.schedule import Spacing, spaced_timesteps
from difflab.trainer import Trainer, point_training_set
from difflab.vlb import nll_bits_per_dim

STEPS = (5, 10, 20, 50, 100)  # and the full chain, T steps
ROWS = (
    ("ddpm", {"variance": "small"}),
    ("ddpm", {"variance": "learned"}),
    ("ddim", {}),
    ("dpmpp_2m", {}),
    ("dpmpp_2m_sde", {}),
)
#: diffusers scheduler per difflab sampler, for the side-by-side table.
DIFFUSERS_KIND = {"ddpm": "DDPM", "ddim": "DDIM", "dpmpp_2m": "DPM", "dpmpp_2m_sde": "DPM-SDE"}
PREDICTION_TYPE = {"x0": "sample", "eps": "epsilon", "v": "v_prediction"}


def train(data: str, steps: int, learned_variance: bool, root: Path, extra: dict[str, str], clip: str) -> LoadedRun:
    """Train at the default config plus `extra`; the loaded run samples with `clip`."""
    options = {**extra, "data": data, "learned_variance": learned_variance} | ({"steps": steps} if steps else {})
    cfg = make_config(options)
    out = root / f"{data}-{'lv' if learned_variance else 'fixed'}"
    if latest_checkpoint_dir(out) is not None:
        print(f"reusing {out}", flush=True)
    else:
        start = time.perf_counter()
        Trainer(cfg, point_training_set(load_points(data, cfg.n_data, cfg.seed), cfg), out).fit(progress=False)
        print(f"trained {out.name} ({cfg.steps} steps) in {time.perf_counter() - start:.0f}s", flush=True)
    run = load_run(out)
    run.denoiser.clip = clip  # type: ignore[assignment]
    return run


def timed(fn: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def ours(
    run: LoadedRun, sampler: str, steps: int, n: int, seed: int, spacing: Spacing, **opts: object
) -> tuple[torch.Tensor, float]:
    schedule = run.schedule.respace(spaced_timesteps(len(run.schedule), steps, spacing))
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((n, *run.info.shape), generator=gen)
    return timed(lambda: SAMPLERS[sampler](run.bound(), x, schedule, generator=gen, **opts))


def make_diffusers(kind: str, run: LoadedRun, spacing: Spacing) -> object | None:
    """diffusers' scheduler for `kind` with the run's x̂_0 clipping, or None where it has no equivalent
    (DPMSolverMultistep has dynamic thresholding but no plain clip; diffusers has no quadratic spacing)."""
    clip = run.denoiser.clip
    if (clip == "clip" and kind.startswith("DPM")) or spacing == "quadratic":
        return None
    thresholding = {"thresholding": clip == "dynamic", "sample_max_value": 1.0}
    common = {
        "num_train_timesteps": len(run.schedule),
        "trained_betas": run.schedule.betas.numpy(),
        "prediction_type": PREDICTION_TYPE[run.cfg.target],
        "timestep_spacing": spacing,
    }
    if kind == "DDPM":
        variance = "learned_range" if run.cfg.learned_variance else "fixed_small"
        return DDPMScheduler(**common, **thresholding, clip_sample=clip == "clip", variance_type=variance)
    if kind == "DDIM":
        return DDIMScheduler(**common, **thresholding, clip_sample=clip == "clip", set_alpha_to_one=True)
    return DPMSolverMultistepScheduler(
        **common,
        **thresholding,
        algorithm_type="sde-dpmsolver++" if kind == "DPM-SDE" else "dpmsolver++",
        solver_order=2,
        lower_order_final=True,
        final_sigmas_type="zero",
    )


@torch.no_grad()
def theirs(
    run: LoadedRun, kind: str, steps: int, n: int, seed: int, spacing: Spacing
) -> tuple[torch.Tensor, float] | None:
    """diffusers' scheduler loop driving our network's raw output (variance channels only for DDPM)."""
    scheduler = make_diffusers(kind, run, spacing)
    if scheduler is None:
        return None
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((n, *run.info.shape), generator=gen)
    dim = x.shape[1]

    def loop() -> torch.Tensor:
        scheduler.set_timesteps(steps)  # type: ignore[attr-defined]
        sample = x
        for t in scheduler.timesteps:  # type: ignore[attr-defined]
            out = run.denoiser.raw(sample, t.expand(n))
            out = out if kind == "DDPM" else out[:, :dim]
            sample = scheduler.step(out, t, sample, generator=gen).prev_sample  # type: ignore[attr-defined]
        return sample

    return timed(loop)


def ratio(run: LoadedRun, samples: torch.Tensor, truth: list[torch.Tensor]) -> float:
    return quality(torch.as_tensor(run.to_data_units(samples)), *truth).ratio


def truth_sets(data: str, n: int) -> list[torch.Tensor]:
    """The truth, then `FLOOR_DRAWS` independent draws for the floor (the seeds `difflab evaluate` uses)."""
    seeds = [1_000_003] + [2_000_003 + k for k in range(FLOOR_DRAWS)]
    return [torch.as_tensor(load_points(data, n, s).x) for s in seeds]


def sampler_table(run: LoadedRun, data: str, n: int, spacing: Spacing) -> None:
    truth = truth_sets(data, n)
    print(f"\n### {data}: quality ratio (wall seconds for {n} samples)\n")
    steps = (*STEPS, len(run.schedule))
    print("| sampler | " + " | ".join(f"{k} steps" for k in steps) + " |")
    print("|---|" + "---|" * len(steps))
    for sampler, opts in ROWS:
        cells = []
        for k in steps:
            samples, seconds = ours(run, sampler, k, n, 0, spacing, **opts)
            cells.append(f"{ratio(run, samples, truth):.2f} ({seconds:.2f}s)")
        name = sampler + (f" ({opts['variance']} var.)" if opts else "")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


def diffusers_table(run: LoadedRun, data: str, n: int, spacing: Spacing) -> None:
    truth = truth_sets(data, n)
    print(f"\n### {data}: difflab vs diffusers on the same network (samples/s, quality ratio)\n")
    print("| algorithm | steps | difflab samples/s | diffusers samples/s | difflab ratio | diffusers ratio |")
    print("|---|---|---|---|---|---|")
    pairs = (
        ("DDPM", "ddpm", {"variance": "learned"}),
        ("DDIM", "ddim", {}),
        ("DPMSolver++ 2M", "dpmpp_2m", {}),
        ("SDE-DPMSolver++ 2M", "dpmpp_2m_sde", {}),
    )
    for kind, sampler, opts in pairs:
        for k in (10, 20, 50):
            a, ta = ours(run, sampler, k, n, 0, spacing, **opts)
            other = theirs(run, DIFFUSERS_KIND[sampler], k, n, 0, spacing)
            rate, quality_b = (
                ("n/a", "n/a") if other is None else (f"{n / other[1]:.0f}", f"{ratio(run, other[0], truth):.3g}")
            )
            print(f"| {kind} | {k} | {n / ta:.0f} | {rate} | {ratio(run, a, truth):.2f} | {quality_b} |", flush=True)


def bits_table(learned: LoadedRun, fixed: LoadedRun, data: str, n: int) -> None:
    x0 = torch.as_tensor(learned.info.scaler.transform(load_points(data, n, 3_000_003).x), dtype=torch.float32)
    print(f"\n### {data}: variational bound, bits/dim (normalized units, n = {n}, all {len(fixed.schedule)} steps)\n")
    print("| model | reverse variance | bits/dim | of which decoder |")
    print("|---|---|---|---|")
    for name, run, variance in (
        ("hybrid (learned variance)", learned, "learned"),
        ("L_simple (fixed variance)", fixed, "small"),
        ("L_simple (fixed variance)", fixed, "large"),
    ):
        bpd = nll_bits_per_dim(
            run.bound(), run.schedule, x0, variance=variance, generator=torch.Generator().manual_seed(0)
        )  # type: ignore[arg-type]
        print(f"| {name} | {variance} | {bpd.total:.3f} | {bpd.decoder:.3f} |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-steps", type=int, default=0, help="0: the default config's steps")
    p.add_argument("--n", type=int, default=2000, help="samples per evaluation and per reference set")
    p.add_argument("--datasets", nargs="+", default=["moons", "circles", "complex"])
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every run")
    p.add_argument("--clip", choices=CLIP_KINDS, default="none", help="x̂_0 clipping for every sampler")
    p.add_argument("--spacing", choices=get_args(Spacing), default=POINT_SPACING, help="respaced timesteps")
    p.add_argument("--keep", type=Path, default=None, help="keep the trained runs here (and reuse them if present)")
    args = p.parse_args()
    extra = dict(item.split("=", 1) for item in args.set)
    print(f"overrides: {extra or 'none (default config)'}; clip: {args.clip}; spacing: {args.spacing}")
    torch.set_num_threads(1)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        runs = {data: train(data, args.train_steps, True, root, extra, args.clip) for data in args.datasets}
        fixed = train(args.datasets[0], args.train_steps, False, root, extra, args.clip)
        for data, run in runs.items():
            sampler_table(run, data, args.n, args.spacing)
        diffusers_table(runs[args.datasets[0]], args.datasets[0], args.n, args.spacing)
        bits_table(runs[args.datasets[0]], fixed, args.datasets[0], args.n)
    print(f"\ntotal {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
