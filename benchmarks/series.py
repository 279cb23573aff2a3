"""Part 1 benchmark: train the default config on each series dataset; print time and quality with spread.

    python benchmarks/series.py [--datasets moons circles ...] [--set key=value ...] [--n 5000] [--draws 4]

Quality is `difflab evaluate`'s: per draw, the energy distance between n fresh samples and n fresh i.i.d.
data points divided by the mean distance between independent draws of the data (the floor), and k-NN
precision/recall next to theirs; mean ± std over the draws. Target: ratio ≤ 2 for every dataset.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import cell, overrides, pin_threads, trained
from difflab.data.toy import SERIES_DATASETS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(SERIES_DATASETS))
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--draws", type=int, default=4)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--keep", type=Path, default=None, help="keep (and reuse) the runs here")
    args = parser.parse_args()
    extra = overrides(args.set)
    print(f"{pin_threads(1)}; overrides: {extra or 'none (defaults)'}")
    print(
        f"| dataset | train steps | train s | evaluate s | ratio (n={args.n}, {args.draws} draws) | precision (floor) "
        "| recall (floor) |"
    )
    print("|---|---:|---:|---:|---|---|---|")
    for name in args.datasets:
        start = time.perf_counter()
        run = trained(name, args.keep, name, **extra)
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        ev = run.evaluate(n=args.n, draws=args.draws, sampler="ddpm", progress=False, save=False)
        eval_s = time.perf_counter() - start
        print(
            f"| {name} | {run.step} | {train_s:.0f} | {eval_s:.0f} | {cell(ev['ratio'])} | "
            f"{cell(ev['precision'], 3)} ({cell(ev['precision_floor'], 3)}) | "
            f"{cell(ev['recall'], 3)} ({cell(ev['recall_floor'], 3)}) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
