"""Few-step sampling, learned variance and diffusers, on the same trained models.

    python benchmarks/samplers.py [--datasets moons circles complex] [--steps 5 10 20 50] [--n 2000] [--draws 4]
                                  [--samplers ddpm ddim dpmpp_2m dpmpp_2m_sde] [--spacing S] [--set key=value]
                                  [--clip none] [--keep DIR]

For each dataset it trains one model at the default config plus `--learned-variance` (the hybrid loss
L_simple + 0.001·L_vlb) and reports, per sampler × steps, the quality ratio of `difflab evaluate` as
mean ± std over draws, the network evaluations (NFE) and samples/s; the last column is the full chain. On the
first dataset it also drives the same network with diffusers' DDPM/DDIM/DPMSolverMultistep schedulers
(samples/s and ratio at equal steps), and compares bits/dim of the learned variance with a fixed-variance
model trained the same way. One torch thread throughout.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

import difflab
from common import cell, overrides, pin_threads, ratios, trained
from difflab.denoiser import CLIP_KINDS
from difflab.samplers import SAMPLERS
from difflab.types import Spacing, choices

#: diffusers scheduler per difflab sampler, for the side-by-side table.
DIFFUSERS_KIND = {"ddpm": "DDPM", "ddim": "DDIM", "dpmpp_2m": "DPM", "dpmpp_2m_sde": "DPM-SDE"}
PREDICTION_TYPE = {"x0": "sample", "eps": "epsilon", "v": "v_prediction"}


def count_evaluations(run: difflab.Run, n: int, **sampling: Any) -> tuple[int, float]:
    """Network calls and wall seconds for one draw of n samples (one chunk, so calls = NFE)."""
    calls = [0]
    handle = run.model.denoiser.model.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    try:
        start = time.perf_counter()
        run.sample(n, chunk_size=n, progress=False, **sampling)
        seconds = time.perf_counter() - start
    finally:
        handle.remove()
    return calls[0], seconds


def sampler_table(run: difflab.Run, data: str, args: argparse.Namespace) -> None:
    total = len(run.model.schedule)
    steps = [*args.steps, total]
    print(f"\n### {data}: ratio (mean ± std over {args.draws} draws of n = {args.n}); NFE; samples/s\n")
    print("| sampler | " + " | ".join(f"{k} steps" for k in steps) + " |")
    print("|---|" + "---|" * len(steps))
    for sampler in args.samplers:
        variants = [{"variance": "small"}, {"variance": "learned"}] if sampler == "ddpm" else [{}]
        for extra in variants:
            if extra.get("variance") == "learned" and not run.config.learned_variance:
                continue
            cells = []
            for k in steps:
                options = {"sampler": sampler, "steps": k, "spacing": args.spacing, "clip": args.clip, **extra}
                ev = run.evaluate(n=args.n, draws=args.draws, progress=False, save=False, **options)
                nfe, seconds = count_evaluations(run, args.n, **options)
                cells.append(f"{cell(ev['ratio'])}; {nfe}; {args.n / seconds:.0f}")
            name = sampler + (f" ({extra['variance']} var.)" if extra else "")
            print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


def make_diffusers(kind: str, run: difflab.Run, spacing: Spacing, clip: str) -> Any | None:
    """diffusers' scheduler for `kind` with the same x̂0 clipping, or None where it has no equivalent
    (DPMSolverMultistep has dynamic thresholding but no plain clip; diffusers has no quadratic spacing)."""
    if (clip == "clip" and kind.startswith("DPM")) or spacing == "quadratic":
        return None
    thresholding = {"thresholding": clip == "dynamic", "sample_max_value": 1.0}
    common = {
        "num_train_timesteps": len(run.model.schedule),
        "trained_betas": run.model.schedule.betas.numpy(),
        "prediction_type": PREDICTION_TYPE[run.config.target],
        "timestep_spacing": spacing,
    }
    if kind == "DDPM":
        variance = "learned_range" if run.config.learned_variance else "fixed_small"
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
def diffusers_samples(
    run: difflab.Run, kind: str, steps: int, n: int, seed: int, spacing: Spacing, clip: str
) -> tuple[np.ndarray, float] | None:
    """diffusers' scheduler loop driving our network's raw output (variance channels only for DDPM), in data units."""
    scheduler = make_diffusers(kind, run, spacing, clip)
    if scheduler is None:
        return None
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((n, *run.info.shape), generator=gen)
    dim = x.shape[1]
    start = time.perf_counter()
    scheduler.set_timesteps(steps)
    sample = x
    for t in scheduler.timesteps:
        out = run.model.denoiser.raw(sample, t.expand(n))
        out = out if kind == "DDPM" else out[:, :dim]
        sample = scheduler.step(out, t, sample, generator=gen).prev_sample
    return run.model.to_data_units(sample), time.perf_counter() - start


def diffusers_table(run: difflab.Run, data: str, args: argparse.Namespace) -> None:
    spacing = "trailing" if args.spacing == "quadratic" else args.spacing
    print(f"\n### {data}: difflab vs diffusers on the same network, {spacing} spacing (samples/s, ratio)\n")
    print("| algorithm | steps | difflab samples/s | diffusers samples/s | difflab ratio | diffusers ratio |")
    print("|---|---|---|---|---|---|")
    for sampler, kind in DIFFUSERS_KIND.items():
        options: dict[str, Any] = {"variance": "learned"} if sampler == "ddpm" and run.config.learned_variance else {}
        for k in (k for k in (10, 20, 50) if k < len(run.model.schedule)):
            ours = dict(sampler=sampler, steps=k, spacing=spacing, clip=args.clip, **options)
            mine = run.evaluate(n=args.n, draws=args.draws, progress=False, save=False, **ours)["ratio"]
            _, seconds = count_evaluations(run, args.n, **ours)
            drawn = [diffusers_samples(run, kind, k, args.n, i, spacing, args.clip) for i in range(args.draws)]
            if drawn[0] is None:
                rate, theirs = "n/a", "n/a"
            else:
                rate = f"{args.n / drawn[0][1]:.0f}"
                theirs = cell(ratios(run, [d[0] for d in drawn if d is not None], args.n))
            print(f"| {kind} | {k} | {args.n / seconds:.0f} | {rate} | {cell(mine)} | {theirs} |", flush=True)


def bits_table(learned: difflab.Run, fixed: difflab.Run, data: str, args: argparse.Namespace) -> None:
    print(
        f"\n### {data}: variational bound, bits/dim (normalized units, n = {args.n}, all steps, {args.draws} draws)\n"
    )
    print("| model | reverse variance | bits/dim | of which decoder |")
    print("|---|---|---|---|")
    for name, run, variance in (
        ("hybrid (learned variance)", learned, "learned"),
        ("L_simple (fixed variance)", fixed, "small"),
        ("L_simple (fixed variance)", fixed, "large"),
    ):
        ev = run.evaluate(nll=True, n=args.n, draws=args.draws, variance=variance, progress=False, save=False)
        print(f"| {name} | {variance} | {cell(ev['nll'], 3)} | {cell(ev['decoder'], 3)} |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["moons", "circles", "complex"])
    p.add_argument("--steps", nargs="+", type=int, default=[5, 10, 20, 50], help="respaced step counts")
    p.add_argument("--samplers", nargs="+", default=sorted(SAMPLERS), choices=sorted(SAMPLERS))
    p.add_argument("--n", type=int, default=2000, help="samples per draw and per reference set")
    p.add_argument("--draws", type=int, default=4)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every run")
    p.add_argument("--clip", choices=CLIP_KINDS, default="none", help="x̂0 clipping for every sampler")
    p.add_argument("--spacing", choices=choices(Spacing), default="quadratic", help="respaced timesteps")
    p.add_argument("--no-learned-variance", action="store_true", help="train with a fixed variance instead")
    p.add_argument("--no-diffusers", action="store_true", help="skip the diffusers and bits/dim tables")
    p.add_argument("--keep", type=Path, default=None, help="keep (and reuse) the trained runs here")
    args = p.parse_args()
    extra = overrides(args.set)
    print(f"{pin_threads(1)}; overrides: {extra or 'none (default config)'}; clip {args.clip}; spacing {args.spacing}")
    start = time.perf_counter()
    lv = not args.no_learned_variance
    tag = "lv" if lv else "fixed"
    runs = {data: trained(data, args.keep, f"{data}-{tag}", learned_variance=lv, **extra) for data in args.datasets}
    for data, run in runs.items():
        sampler_table(run, data, args)
    if not args.no_diffusers:
        first = args.datasets[0]
        diffusers_table(runs[first], first, args)
        if lv:
            fixed = trained(first, args.keep, f"{first}-fixed", **extra)
            bits_table(runs[first], fixed, first, args)
    print(f"\ntotal {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
