"""Benchmark: do class-conditional samples land on their class, and does unconditional sampling keep proportions?

Trains a conditional model on circles_vs_moons at the default config with all labels and with 2,000 labels,
then classifies every generated point by its nearest neighbour in fresh labelled data
(`difflab.metrics.nearest_neighbour_labels`). Reports, per guidance weight, the agreement with the requested
class and each class's energy-distance ratio against fresh data of that class (coverage), both as
mean ± std over draws, and the class shares of unconditional samples (w = 0) next to the data's.

    python benchmarks/guidance.py [--p-uncond 0.15] [--labelled -1 2000] [--runs RUN ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

import difflab
from common import cell, overrides, pin_threads, trained
from difflab.data.source import load_points
from difflab.evaluation import Stat
from difflab.metrics import nearest_neighbour_labels

DATA = "circles_vs_moons"


def measure(run: difflab.Run, weights: list[float], n: int, draws: int, seed: int) -> list[str]:
    """Table rows for one run: per guidance weight, NN agreement and per-class ratios; then unconditional shares."""
    fresh = load_points(DATA, 20_000, seed + 7_000_001)
    reference, ref_labels = torch.as_tensor(fresh.x), torch.as_tensor(fresh.labels)
    names = run.class_names or []
    labels = torch.arange(n) % len(names)
    rows = []
    for w in weights:
        sampling = run.resolve(sampler="ddpm", guidance=w)
        agreement = []
        for d in range(draws):
            x = torch.as_tensor(run.model.to_data_units(run.draw(n, sampling, labels=labels, seed=seed + d)))
            agreement.append(float((nearest_neighbour_labels(x, reference, ref_labels) == labels).double().mean()))
        ratios = [
            cell(
                run.evaluate(
                    n=n // 2, draws=draws, label=k, guidance=w, seed=seed, sampler="ddpm", progress=False, save=False
                )["ratio"]
            )
            for k in range(len(names))
        ]
        rows.append(f"{w:g} | {Stat([100 * a for a in agreement]).format(2)}% | " + " / ".join(ratios))
    shares = []
    for d in range(draws):
        x = torch.as_tensor(run.sample(n, seed=seed + d, sampler="ddpm", progress=False))
        shares.append(np.bincount(nearest_neighbour_labels(x, reference, ref_labels).numpy(), minlength=2) / n)
    ratio = run.evaluate(n=n, draws=draws, seed=seed, sampler="ddpm", progress=False, save=False)["ratio"]
    share_text = " / ".join(Stat([s[k] for s in shares]).format(3) for k in range(2))
    rows.append(f"0 (uncond.) | shares {share_text} | {cell(ratio)} (all data)")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labelled", nargs="+", type=int, default=[-1, 2000])
    parser.add_argument("--p-uncond", nargs="+", type=float, default=[0.15])
    parser.add_argument("--weights", nargs="+", type=float, default=[1.0, 2.0, 3.0, 5.0])
    parser.add_argument("--n", type=int, default=4000, help="samples per measurement")
    parser.add_argument("--draws", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every run")
    parser.add_argument("--keep", type=Path, default=None, help="keep (and reuse) the run directories here")
    parser.add_argument("--runs", nargs="+", type=Path, default=None, help="measure these trained runs instead")
    args = parser.parse_args()
    print(pin_threads(1))
    extra = overrides(args.set)
    data_shares = np.bincount(load_points(DATA, 20_000, args.seed + 7_000_001).labels, minlength=2) / 20_000
    print(f"data class shares (circles / moons): {data_shares[0]:.3f} / {data_shares[1]:.3f}\n")
    print("| run | w | NN agreement | ratio per class (circles / moons) |")
    print("|---|---:|---:|---|")
    if args.runs:
        runs = [difflab.load(path) for path in args.runs]
    else:
        runs = [
            trained(DATA, args.keep, f"{labelled}-{p}", conditional=True, labelled=labelled, p_uncond=p, **extra)
            for labelled in args.labelled
            for p in args.p_uncond
        ]
    for run in runs:
        cfg = run.config
        name = f"labelled {'all' if cfg.labelled < 0 else cfg.labelled}, p_uncond {cfg.p_uncond:g}, {cfg.target}"
        for row in measure(run, args.weights, args.n, args.draws, args.seed):
            print(f"| {name} | {row} |", flush=True)


if __name__ == "__main__":
    main()
