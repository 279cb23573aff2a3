"""Few-step sampling, learned variance and diffusers, on the same trained models.

    python benchmarks/samplers.py [--train-steps 3000] [--n 2000]

For moons, circles and complex it trains one learned-variance model (hybrid loss, cosine, T = 200,
x0 target) and reports, per sampler × steps, the quality ratio (energy distance to fresh data / the
distance between two fresh draws; 1 is perfect) and the wall time to draw `n` samples. On moons it
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

import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

from difflab.config import make_config
from difflab.data.source import load_points
from difflab.metrics import quality
from difflab.run import LoadedRun, load_run
from difflab.samplers import SAMPLERS
from difflab.schedule import spaced_timesteps
from difflab.train import Trainer, point_training_set
from difflab.vlb import nll_bits_per_dim

STEPS = (5, 10, 20, 50, 200)
ROWS = (("ddpm", {"variance": "small"}), ("ddpm", {"variance": "learned"}), ("ddim", {}), ("dpmpp_2m", {}))
PREDICTION_TYPE = {"x0": "sample", "eps": "epsilon", "v": "v_prediction"}


def train(data: str, steps: int, learned_variance: bool, root: Path) -> LoadedRun:
    cfg = make_config({"data": data, "steps": steps, "learned_variance": learned_variance, "checkpoint_every": steps})
    out = root / f"{data}-{'lv' if learned_variance else 'fixed'}"
    start = time.perf_counter()
    Trainer(cfg, point_training_set(load_points(data, cfg.n_data, cfg.seed), cfg), out).fit(progress=False)
    print(f"trained {out.name} ({steps} steps) in {time.perf_counter() - start:.0f}s", flush=True)
    return load_run(out)


def timed(fn: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def ours(run: LoadedRun, sampler: str, steps: int, n: int, seed: int, **opts: object) -> tuple[torch.Tensor, float]:
    schedule = run.schedule.respace(spaced_timesteps(len(run.schedule), steps))
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((n, *run.info.shape), generator=gen)
    return timed(lambda: SAMPLERS[sampler](run.bound(), x, schedule, generator=gen, **opts))


def make_diffusers(kind: str, run: LoadedRun) -> object:
    common = {
        "num_train_timesteps": len(run.schedule),
        "trained_betas": run.schedule.betas.numpy(),
        "prediction_type": PREDICTION_TYPE[run.cfg.target],
        "timestep_spacing": "trailing",
    }
    if kind == "DDPM":
        variance = "learned_range" if run.cfg.learned_variance else "fixed_small"
        return DDPMScheduler(**common, clip_sample=False, variance_type=variance)
    if kind == "DDIM":
        return DDIMScheduler(**common, clip_sample=False, set_alpha_to_one=True)
    return DPMSolverMultistepScheduler(
        **common, algorithm_type="dpmsolver++", solver_order=2, lower_order_final=True, final_sigmas_type="zero"
    )


@torch.no_grad()
def theirs(run: LoadedRun, kind: str, steps: int, n: int, seed: int) -> tuple[torch.Tensor, float]:
    """diffusers' scheduler loop driving our network's raw output (variance channels only for DDPM)."""
    scheduler = make_diffusers(kind, run)
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


def ratio(run: LoadedRun, samples: torch.Tensor, truth: tuple[torch.Tensor, torch.Tensor]) -> float:
    return quality(torch.as_tensor(run.to_data_units(samples)), *truth).ratio


def truth_sets(data: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.as_tensor(load_points(data, n, 1_000_003).x), torch.as_tensor(load_points(data, n, 2_000_003).x)


def sampler_table(run: LoadedRun, data: str, n: int) -> None:
    truth = truth_sets(data, n)
    print(f"\n### {data}: quality ratio (wall seconds for {n} samples)\n")
    print("| sampler | " + " | ".join(f"{k} steps" for k in STEPS) + " |")
    print("|---|" + "---|" * len(STEPS))
    for sampler, opts in ROWS:
        cells = []
        for k in STEPS:
            samples, seconds = ours(run, sampler, k, n, 0, **opts)
            cells.append(f"{ratio(run, samples, truth):.2f} ({seconds:.2f}s)")
        name = sampler + (f" ({opts['variance']} var.)" if opts else "")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


def diffusers_table(run: LoadedRun, data: str, n: int) -> None:
    truth = truth_sets(data, n)
    print(f"\n### {data}: difflab vs diffusers on the same network (samples/s, quality ratio)\n")
    print("| algorithm | steps | difflab samples/s | diffusers samples/s | difflab ratio | diffusers ratio |")
    print("|---|---|---|---|---|---|")
    pairs = (("DDPM", "ddpm", {"variance": "learned"}), ("DDIM", "ddim", {}), ("DPMSolver++ 2M", "dpmpp_2m", {}))
    for kind, sampler, opts in pairs:
        for k in (10, 20, 50):
            a, ta = ours(run, sampler, k, n, 0, **opts)
            b, tb = theirs(run, kind.split()[0].replace("DPMSolver++", "DPM"), k, n, 0)
            quality_cells = f"{ratio(run, a, truth):.2f} | {ratio(run, b, truth):.3g}"
            print(f"| {kind} | {k} | {n / ta:.0f} | {n / tb:.0f} | {quality_cells} |", flush=True)


def bits_table(learned: LoadedRun, fixed: LoadedRun, data: str, n: int) -> None:
    x0 = torch.as_tensor(learned.info.scaler.transform(load_points(data, n, 3_000_003).x), dtype=torch.float32)
    print(f"\n### {data}: variational bound, bits/dim (normalized units, n = {n}, all 200 steps)\n")
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
    p.add_argument("--train-steps", type=int, default=3000)
    p.add_argument("--n", type=int, default=2000, help="samples per evaluation and per reference set")
    p.add_argument("--datasets", nargs="+", default=["moons", "circles", "complex"])
    args = p.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        runs = {data: train(data, args.train_steps, True, Path(tmp)) for data in args.datasets}
        fixed = train(args.datasets[0], args.train_steps, False, Path(tmp))
        for data, run in runs.items():
            sampler_table(run, data, args.n)
        diffusers_table(runs[args.datasets[0]], args.datasets[0], args.n)
        bits_table(runs[args.datasets[0]], fixed, args.datasets[0], args.n)
    print(f"\ntotal {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
