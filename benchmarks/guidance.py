"""Benchmark: do class-conditional samples land on their class, and does unconditional sampling keep proportions?

Trains a conditional model on circles_vs_moons at the default config with all labels and with
2,000 labels, then classifies every generated point by its nearest neighbour in fresh labelled
data (`difflab.metrics.nearest_neighbour_labels`). Reports the agreement with the requested class
per guidance weight, and the class shares of unconditional samples (w = 0) next to the data's.

    PYTHONPATH=src python benchmarks/guidance.py [--p-uncond 0.15] [--labelled -1 2000]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from difflab.cli import build_parser, draw
from difflab.config import make_config
from difflab.data.source import load_points
from difflab.metrics import nearest_neighbour_labels
from difflab.run import load_run
from difflab.train import Trainer, point_training_set

DATA = "circles_vs_moons"


def train(run_dir: Path, labelled: int, p_uncond: float, seed: int, extra: dict[str, str]) -> float:
    """Train one conditional run at the default config (plus `extra`); return training seconds."""
    options = {"data": DATA, "conditional": True, "labelled": labelled, "p_uncond": p_uncond, "seed": seed}
    cfg = make_config({**options, **extra})
    trainer = Trainer(cfg, point_training_set(load_points(cfg.data, cfg.n_data, cfg.seed), cfg), run_dir)
    return trainer.fit(progress=False).seconds


def measure(run_dir: Path, weights: list[float], n: int, seed: int) -> tuple[dict[float, float], np.ndarray]:
    """NN agreement with the requested class per guidance weight; class shares of unconditional samples."""
    run = load_run(run_dir)
    args = build_parser().parse_args(["sample", str(run_dir), "--out", "unused.npy", "--seed", str(seed)])
    fresh = load_points(DATA, 20_000, seed + 7_000_001)
    reference, ref_labels = torch.as_tensor(fresh.x), torch.as_tensor(fresh.labels)
    labels = torch.arange(n) % run.info.num_classes
    agreement = {}
    for w in weights:
        x = torch.as_tensor(run.to_data_units(draw(run, args, n, seed, labels=labels, guidance=w)))
        agreement[w] = float((nearest_neighbour_labels(x, reference, ref_labels) == labels).double().mean())
    x = torch.as_tensor(run.to_data_units(draw(run, args, n, seed)))
    shares = np.bincount(nearest_neighbour_labels(x, reference, ref_labels).numpy(), minlength=2) / n
    return agreement, shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labelled", nargs="+", type=int, default=[-1, 2000])
    parser.add_argument("--p-uncond", nargs="+", type=float, default=[0.15])
    parser.add_argument("--weights", nargs="+", type=float, default=[1.0, 2.0, 3.0, 5.0])
    parser.add_argument("--n", type=int, default=4000, help="samples per measurement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every run")
    parser.add_argument("--keep", type=Path, default=None, help="keep the run directories here")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.set)
    torch.set_num_threads(1)
    data_shares = np.bincount(load_points(DATA, 20_000, args.seed + 7_000_001).labels, minlength=2) / 20_000
    cols = " | ".join(f"w={w:g}" for w in args.weights)
    print(f"data class shares (circles, moons): {data_shares[0]:.3f}, {data_shares[1]:.3f}\n")
    print(f"| labelled | p_uncond | {cols} | uncond. circles/moons | train s |")
    print("|---|---:|" + "---:|" * len(args.weights) + "---|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for labelled in args.labelled:
            for p in args.p_uncond:
                run_dir = (args.keep or Path(tmp)) / f"{labelled}-{p}"
                seconds = train(run_dir, labelled, p, args.seed, extra)
                agreement, shares = measure(run_dir, args.weights, args.n, args.seed)
                accs = " | ".join(f"{100 * agreement[w]:.2f}%" for w in args.weights)
                name = "all" if labelled < 0 else str(labelled)
                print(f"| {name} | {p:g} | {accs} | {shares[0]:.3f}/{shares[1]:.3f} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
