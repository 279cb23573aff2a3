"""Benchmark: do class-conditional samples land on their class, and does unconditional sampling keep proportions?

Trains a conditional model on circles_vs_moons at the default config with all labels and with
2,000 labels, then classifies every generated point by its nearest neighbour in fresh labelled
data (`difflab.metrics.nearest_neighbour_labels`). Reports the agreement with the requested class
per guidance weight, and the class shares of unconditional samples (w = 0) next to the data's.

    PYTHONPATH=src python benchmarks/guidance.py [--p-uncond 0.15] [--labelled -1 2000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from difflab.cli import build_parser, draw
from difflab.config import make_config
from difflab.data.source import load_points
from difflab.metrics import nearest_neighbour_labels, quality
from difflab.run import LoadedRun, load_run
from difflab.trainer import Trainer, point_training_set

DATA = "circles_vs_moons"


def train(run_dir: Path, labelled: int, p_uncond: float, seed: int, extra: dict[str, str]) -> float:
    """Train one conditional run at the default config (plus `extra`); return training seconds."""
    options = {"data": DATA, "conditional": True, "labelled": labelled, "p_uncond": p_uncond, "seed": seed}
    cfg = make_config({**options, **extra})
    trainer = Trainer(cfg, point_training_set(load_points(cfg.data, cfg.n_data, cfg.seed), cfg), run_dir)
    return trainer.fit(progress=False).seconds


def measure(run_dir: Path, run: LoadedRun, weights: list[float], n: int, seed: int) -> list[str]:
    """Table rows for one run: per guidance weight, the NN agreement with the requested class and each class's
    energy-distance ratio against fresh data of that class (coverage); then unconditional (w = 0) class shares
    and ratio against all the data."""
    flags = ["--out", "unused.npy", "--seed", str(seed), "--sampler", "ddpm"]
    args = build_parser().parse_args(["sample", str(run_dir), *flags])
    fresh, fresh2 = load_points(DATA, 20_000, seed + 7_000_001), load_points(DATA, 20_000, seed + 8_000_001)
    reference, ref_labels = torch.as_tensor(fresh.x), torch.as_tensor(fresh.labels)
    classes = range(run.info.num_classes)
    labels = torch.arange(n) % run.info.num_classes
    rows = []
    for w in weights:
        x = torch.as_tensor(run.to_data_units(draw(run, args, n, seed, labels=labels, guidance=w)))
        agreement = float((nearest_neighbour_labels(x, reference, ref_labels) == labels).double().mean())
        ratios = []
        for k in classes:
            truth = torch.as_tensor(fresh.x[fresh.labels == k][: n // 2])
            truth2 = torch.as_tensor(fresh2.x[fresh2.labels == k][: n // 2])
            ratios.append(quality(x[labels == k], truth, truth2).ratio)
        rows.append(f"{w:g} | {100 * agreement:.2f}% | " + " / ".join(f"{r:.2f}" for r in ratios))
    x = torch.as_tensor(run.to_data_units(draw(run, args, n, seed)))
    shares = np.bincount(nearest_neighbour_labels(x, reference, ref_labels).numpy(), minlength=2) / n
    ratio = quality(x, reference[:n], torch.as_tensor(fresh2.x[:n])).ratio
    rows.append(f"0 (uncond.) | shares {shares[0]:.3f} / {shares[1]:.3f} | {ratio:.2f} (all data)")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labelled", nargs="+", type=int, default=[-1, 2000])
    parser.add_argument("--p-uncond", nargs="+", type=float, default=[0.15])
    parser.add_argument("--weights", nargs="+", type=float, default=[1.0, 2.0, 3.0, 5.0])
    parser.add_argument("--n", type=int, default=4000, help="samples per measurement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every run")
    parser.add_argument("--keep", type=Path, default=None, help="keep the run directories here")
    parser.add_argument("--runs", nargs="+", type=Path, default=None, help="measure these trained runs instead")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.set)
    torch.set_num_threads(1)
    data_shares = np.bincount(load_points(DATA, 20_000, args.seed + 7_000_001).labels, minlength=2) / 20_000
    print(f"data class shares (circles / moons): {data_shares[0]:.3f} / {data_shares[1]:.3f}\n")
    print("| run | w | NN agreement | ratio per class (circles / moons) |")
    print("|---|---:|---:|---|")
    with tempfile.TemporaryDirectory() as tmp:
        runs = args.runs or []
        if not runs:
            for labelled in args.labelled:
                for p in args.p_uncond:
                    run_dir = (args.keep or Path(tmp)) / f"{labelled}-{p}"
                    seconds = train(run_dir, labelled, p, args.seed, extra)
                    print(f"trained {run_dir.name} in {seconds:.0f}s", file=sys.stderr)
                    runs.append(run_dir)
        for run_dir in runs:
            run = load_run(run_dir)
            cfg = run.cfg
            name = f"labelled {'all' if cfg.labelled < 0 else cfg.labelled}, p_uncond {cfg.p_uncond:g}, {cfg.target}"
            for row in measure(run_dir, run, args.weights, args.n, args.seed):
                print(f"| {name} | {row} |", flush=True)


if __name__ == "__main__":
    main()
