"""docs/rings-fourier.png: the rings CSV, and samples of a default run with and without Fourier features.

    python benchmarks/fourier_figure.py [--keep runs/fewstep] [--out docs/rings-fourier.png]

The run with Fourier features is the default run of benchmarks/fewstep.py (reused from the same --keep folder);
the other differs only by `fourier_features=0`. Both draw n = 3,000 points with the full ancestral chain, from
the same seed; the three panels share their axes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt

from common import pin_threads, trained
from difflab.data.files import read_points
from difflab.points.plots import scatter
from fewstep import write_custom_sets


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keep", type=Path, default=Path("runs/fewstep"))
    p.add_argument("--out", type=Path, default=Path("docs/rings-fourier.png"))
    p.add_argument("--n", type=int, default=3000)
    args = p.parse_args()
    print(pin_threads(1))
    write_custom_sets(args.keep / "data")
    data = str(args.keep / "data" / "rings.csv")
    runs = {
        "64 Fourier features (the default)": trained(data, args.keep, "rings"),
        "no Fourier features": trained(data, args.keep, "rings-no-fourier", fourier_features=0),
    }
    x = read_points(Path(data)).x[: args.n]
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.8), sharex=True, sharey=True)
    scatter(axes[0], x, (0, 1), None, f"rings.csv: data (n = {args.n:,})")
    for ax, key in zip(axes[1:], ["no Fourier features", "64 Fourier features (the default)"], strict=True):
        run = runs[key]
        samples = run.sample(args.n, sampler="ddpm", seed=0, progress=False)
        scatter(ax, samples, (0, 1), None, f"{key}\n{run.config.steps:,} training steps; full chain, 1000 steps")
    fig.suptitle("Fourier features of the input let the MLP draw thin rings (same data, budget and seed)", y=1.0)
    fig.savefig(args.out, dpi=100, bbox_inches="tight")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
