"""Which few-step sampler to use by default: each candidate's ratio against the full chain's, per NFE, per set.

    python benchmarks/fewstep.py [--keep runs/fewstep] [--steps 5 8 10 15 20] [--draws 6] [--n 2000]
                                 [--candidates dpmpp_2m:quadratic ...]

Trains the default config on moons, circles, parabola, complex and two sets read from CSV files (a spiral and
three rings, written by this script), then evaluates every candidate (sampler × spacing) at each step count
and the full ancestral chain, as `difflab evaluate` does (mean ± std over draws). A candidate meets the target
at K network evaluations when its mean ratio is within 1.5× of the full chain's on every set; the table ends
with the smallest such K per candidate.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from common import cell, overrides, pin_threads, trained
from difflab.evaluation import Stat

SETS = ["moons", "circles", "parabola", "complex", "spiral.csv", "rings.csv"]
CANDIDATES = [
    ("dpmpp_2m", "quadratic"),
    ("dpmpp_2m_sde", "quadratic"),
    ("dpmpp_2m", "logsnr"),
    ("dpmpp_2m", "karras"),
    ("dpmpp_3m", "quadratic"),
    ("dpmpp_3m", "logsnr"),
    ("dpmpp_3m", "karras"),
    ("dpmpp_2m_sde", "quadratic"),
    ("dpmpp_2m_sde", "logsnr"),
    ("ddim", "quadratic"),
]


def write_custom_sets(folder: Path, n: int = 20_000) -> None:
    """Two thin-structured sets as CSV files: an Archimedean spiral and three concentric rings."""
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "spiral.csv").exists():
        t = np.sqrt(rng.uniform(0.05, 1.0, n)) * 3.5 * math.pi
        pts = np.stack([t * np.cos(t), t * np.sin(t)], 1) / 3 + rng.normal(0, 0.04, (n, 2))
        np.savetxt(folder / "spiral.csv", pts, delimiter=",", header="x,y", comments="", fmt="%.5f")
    if not (folder / "rings.csv").exists():
        k = rng.integers(0, 3, n)
        angle = rng.uniform(0, 2 * math.pi, n)
        radius = np.array([0.5, 1.2, 2.0])[k]
        pts = np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1) + rng.normal(0, 0.02, (n, 2))
        np.savetxt(folder / "rings.csv", pts, delimiter=",", header="x,y", comments="", fmt="%.5f")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", nargs="+", default=SETS)
    p.add_argument("--steps", nargs="+", type=int, default=[5, 8, 10, 15, 20])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--draws", type=int, default=6)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every run")
    p.add_argument("--keep", type=Path, default=Path("runs/fewstep"), help="keep (and reuse) the runs here")
    p.add_argument(
        "--candidates", nargs="+", default=[f"{s}:{k}" for s, k in CANDIDATES], help="SAMPLER:SPACING (default: all)"
    )
    args = p.parse_args()
    extra = overrides(args.set)
    print(f"{pin_threads(1)}; overrides: {extra or 'none (default config)'}; n = {args.n}, {args.draws} draws")
    write_custom_sets(args.keep / "data")
    start = time.perf_counter()
    runs = {}
    for name in args.sets:
        data = str(args.keep / "data" / name) if name.endswith(".csv") else name
        runs[name] = trained(data, args.keep, name.removesuffix(".csv"), **extra)
        print(f"{name}: trained ({time.perf_counter() - start:.0f}s so far)", flush=True)
    full = {
        name: run.evaluate(n=args.n, draws=args.draws, sampler="ddpm", progress=False, save=False)["ratio"]
        for name, run in runs.items()
    }
    print("\n| set | full chain (1000 NFE) |\n|---|---|")
    for name, stat in full.items():
        print(f"| {name} | {cell(stat)} |", flush=True)
    print(
        "\n| sampler | spacing | NFE | "
        + " | ".join(args.sets)
        + " | worst ratio / full |\n|---|---|---|"
        + "---|" * (len(args.sets) + 1)
    )
    smallest: dict[tuple[str, str], int | None] = {}
    precision: list[str] = []
    for sampler, spacing in (c.split(":", 1) for c in args.candidates):
        smallest[(sampler, spacing)] = None
        for k in args.steps:
            stats: dict[str, Stat] = {}
            sharp: dict[str, Stat] = {}
            for name, run in runs.items():
                ev = run.evaluate(
                    n=args.n, draws=args.draws, sampler=sampler, steps=k, spacing=spacing, progress=False, save=False
                )
                stats[name], sharp[name] = ev["ratio"], ev["precision"]
            precision.append(f"| {sampler} | {spacing} | {k} | " + " | ".join(cell(sharp[n], 3) for n in runs) + " |")
            worst = max(stats[name].mean / full[name].mean for name in runs)
            if worst <= 1.5 and smallest[(sampler, spacing)] is None:
                smallest[(sampler, spacing)] = k
            cells = " | ".join(cell(stats[name]) for name in runs)
            print(f"| {sampler} | {spacing} | {k} | {cells} | {worst:.2f} |", flush=True)
    print(
        "\nk-NN precision (the full chain's is in `difflab evaluate`; the data's floor is 0.997-1.000 on these sets):"
    )
    print("\n| sampler | spacing | NFE | " + " | ".join(args.sets) + " |\n|---|---|---|" + "---|" * len(args.sets))
    print("\n".join(precision))
    print("\n| sampler | spacing | smallest NFE within 1.5× of the full chain on every set |\n|---|---|---|")
    for (sampler, spacing), k in smallest.items():
        print(f"| {sampler} | {spacing} | {k if k is not None else f'> {max(args.steps)}'} |")
    print(f"\ntotal {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
