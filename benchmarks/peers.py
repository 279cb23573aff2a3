"""difflab's defaults against what a diffusers user would write and against the tutorial's own configuration,
side by side in one run: the same data, the same network, the same wall-clock training budget, one thread each.

    python benchmarks/peers.py [--data moons circles] [--budget 120] [--n 2000] [--draws 4]

- difflab: `difflab.train(data, steps=S)` with every default (v target, cosine T = 1000, EMA, warm-up and
  cosine decay), sampled with its default sampler; S is chosen so training takes the budget.
- diffusers user: `DDPMScheduler()` with its default config (linear β, T = 1000, ε, clipped x̂0), the same MLP
  on the same [-1, 1]-normalized data, a plain AdamW(lr 1e-3) loop without EMA for the budget, and the
  scheduler's own 1000-step sampling loop; its few-step runs use DPMSolverMultistepScheduler on that network.
- the tutorial: the series' configuration through difflab (linear β 1e-4..0.02 with T = 200, x0 target, the
  ELBO-weighted Huber loss, t as one more input), sampled as the series does, with its 200-step ancestral chain.

For each: quality ratio (mean ± std over draws, as `difflab evaluate`) and samples/s of its own sampler, training
steps and seconds, and the fewest network evaluations (of 5, 10, 15, 20, 30, 50, 100) with a mean ratio
≤ 1.5, if any.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from diffusers import DDPMScheduler, DPMSolverMultistepScheduler

import difflab
from common import cell, pin_threads, ratios
from difflab.data.source import load_points
from difflab.models.mlp import MLP

NFE = [5, 10, 15, 20, 30, 50, 100]
TUTORIAL = {
    "schedule": "series",
    "timesteps": 200,
    "target": "x0",
    "weighting": "elbo",
    "loss": "huber",
    "time_embedding": "scalar",
    "fourier_features": 0,
}


def budgeted_steps(data: str, budget: float, **options: object) -> int:
    """Training steps that take `budget` seconds at this config, from a 300-step calibration run."""
    probe = difflab.train(data, steps=300, progress=False, threads=1, **options)
    rate = (probe.training.steps - probe.training.start_step) / probe.training.seconds
    return max(300, int(rate * budget))


def fewest_nfe(quality: Callable[[int], float]) -> str:
    for k in NFE:
        if quality(k) <= 1.5:
            return str(k)
    return f"> {NFE[-1]}"


def difflab_row(
    name: str, data: str, budget: float, args: argparse.Namespace, options: dict[str, object], sampler: dict[str, str]
) -> str:
    """A difflab contender trained for the budget, judged and timed with `sampler` (empty: the run's default)."""
    steps = budgeted_steps(data, budget, **options)
    run = difflab.train(data, steps=steps, progress=False, threads=1, **options)
    ev = run.evaluate(n=args.n, draws=args.draws, progress=False, save=False, **sampler)
    sampling = run.resolve(**sampler)
    start = time.perf_counter()
    run.sample(args.n, progress=False, **sampler)
    rate = args.n / (time.perf_counter() - start)
    nfe = fewest_nfe(
        lambda k: (
            run.evaluate(n=args.n, draws=args.draws, steps=min(k, len(run.model.schedule)), progress=False, save=False)[
                "ratio"
            ].mean
        )
    )
    return (
        f"| {name} | {cell(ev['ratio'])} | {ev['precision'].format(3)} | {run.step} | {run.training.seconds:.0f} | "
        f"{sampling.sampler} {sampling.steps} | {rate:.0f} | {nfe} |"
    )


def diffusers_row(data: str, budget: float, args: argparse.Namespace) -> str:
    """The plain loop a diffusers user would write, on difflab's MLP and the same normalized data."""
    reference = difflab.train(data, steps=1, progress=False)  # for the normalization and the evaluation data
    cfg = reference.config  # a built-in set keeps no copy: draw the run's training set again from its seed
    points = load_points(data, cfg.n_data, cfg.seed, cfg.label_column).x
    x = torch.as_tensor(reference.info.scaler.transform(points), dtype=torch.float32)
    torch.manual_seed(0)
    net = MLP(  # difflab's default network, Fourier features included
        x.shape[1],
        hidden=cfg.hidden,
        depth=cfg.depth,
        time_embedding=cfg.time_embedding,
        fourier_features=cfg.fourier_features,
    )
    scheduler = DDPMScheduler()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget:
        batch = x[torch.randint(0, len(x), (512,), generator=g)]
        t = torch.randint(0, 1000, (512,), generator=g)
        noise = torch.randn(batch.shape, generator=g)
        loss = torch.nn.functional.mse_loss(net(scheduler.add_noise(batch, noise, t), t / 999, None), noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        steps += 1
    seconds = time.perf_counter() - start
    net.eval()

    @torch.no_grad()
    def sample(seed: int, sched: object = scheduler, k: int = 1000) -> np.ndarray:
        sched.set_timesteps(k)  # type: ignore[attr-defined]
        gen = torch.Generator().manual_seed(seed)
        s = torch.randn(args.n, x.shape[1], generator=gen)
        for t in sched.timesteps:  # type: ignore[attr-defined]
            s = sched.step(net(s, t.expand(len(s)) / 999, None), t, s, generator=gen).prev_sample  # type: ignore[attr-defined]
        return reference.model.to_data_units(s)

    quality = ratios(reference, [sample(i) for i in range(args.draws)], args.n)
    start = time.perf_counter()
    sample(0)
    rate = args.n / (time.perf_counter() - start)
    dpm = DPMSolverMultistepScheduler(timestep_spacing="trailing")
    nfe = fewest_nfe(lambda k: ratios(reference, [sample(i, dpm, k) for i in range(args.draws)], args.n).mean)
    return (
        f"| diffusers user (DDPMScheduler defaults, ε, no EMA) | {cell(quality)} | — | {steps} | {seconds:.0f} | "
        f"DDPM 1000 | {rate:.0f} | {nfe} |"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=["moons", "circles"])
    p.add_argument("--budget", type=float, default=120.0, help="training seconds per contender")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--draws", type=int, default=4)
    args = p.parse_args()
    print(f"{pin_threads(1)}; training budget {args.budget:.0f} s each; n = {args.n}, {args.draws} draws")
    for data in args.data:
        print(f"\n### {data}\n")
        print(
            "| contender | ratio | precision | training steps | training s | default sampler | samples/s | "
            "fewest NFE to ratio ≤ 1.5 |\n|---|---|---|---|---|---|---|---|"
        )
        print(difflab_row("difflab defaults", data, args.budget, args, {}, {}), flush=True)
        print(diffusers_row(data, args.budget, args), flush=True)
        print(difflab_row("the tutorial's config", data, args.budget, args, TUTORIAL, {"sampler": "ddpm"}), flush=True)


if __name__ == "__main__":
    main()
