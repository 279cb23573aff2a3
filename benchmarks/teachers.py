"""Is every built-in set sharp at its default budget, on every seed? A strict yardstick.

    python benchmarks/teachers.py [--sets ...] [--seeds 0 1 2] [--n 4000] [--draws 25] [--floor-draws 100]

Each (set, seed) is trained with difflab's defaults for that set (or with `--set KEY=VALUE` on top) into
`--keep/s{seed}/{set}` and reused there. Its samples are then measured with the default sampler and with the
full ancestral chain, against one large draw of the data (the truth, `--truth` points, standardized by its own
mean and std): `--draws` disjoint subsets of n samples each give the energy distance and k-NN precision and
recall (k = 10); the same figures for `--floor-draws` fresh draws of n data points are the floors. ratio = a
subset's distance / the floors' mean. "sharp" is `difflab.points.evaluation.sharp`, the bound of its verdict: mean
ratio ≤ 1.5 and precision within 0.01 of its floor. The row "another draw of the data" measures `--draws` subsets
of a fresh data draw exactly as a run's samples are measured: what a perfect model scores, spread included.

Why 100 floor draws: one draw's energy distance is skewed, its spread 0.6-0.8 of its mean, so the mean of 10 draws
is off by 20-25% (one standard error) and its errors divide every ratio of the set alike; with 10 draws swissroll's
and checkerboard's floors came out 0.66× and 0.61× of their 100-draw means, and every run of theirs looked 1.5-1.6×
further from the data than it was (RESULTS-teachers.md, "The floor's own noise").

Why this is stricter than `Run.evaluate` at n = 3,000 (benchmarks/sharpness.py): a model whose samples are off
by a fixed amount keeps its energy distance while the floor shrinks as 1/n, so the ratio grows with n; a fixed
large truth takes the truth's own noise out of every ratio; and k-NN balls around 20,000 truth points are
smaller than around n, so precision sees a thinner blur.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import difflab
from common import cell, overrides, pin_threads, trained
from difflab.data.toy import DATASETS, builtin
from difflab.evaluation import Stat
from difflab.metrics import Reference, standardize_like
from difflab.points.evaluation import K, sharp

#: Seeds of the truth and of the floors' data draws, far from any training seed.
TRUTH_SEED = 7_000_001

SAMPLERS = {"default": {}, "full chain": {"sampler": "ddpm"}}


class Yardstick:
    """One large standardized draw of a set (the truth) and the floors of fresh n-point draws against it."""

    def __init__(self, name: str, truth: int, n: int, draws: int, floor_draws: int) -> None:
        self.truth = torch.as_tensor(builtin(name, truth, TRUTH_SEED).x, dtype=torch.float64)
        self.reference = Reference.of(standardize_like(self.truth)[0], K)
        floors = [self._compare(builtin(name, n, TRUTH_SEED + 1 + j).x) for j in range(floor_draws)]
        self.floor, self.precision_floor, self.recall_floor = (Stat(list(f)) for f in zip(*floors, strict=True))
        self.name, self.n, self.draws = name, n, draws

    def _compare(self, points: np.ndarray) -> tuple[float, float, float]:
        _, s = standardize_like(self.truth, torch.as_tensor(points, dtype=torch.float64))
        return self.reference.compare(s, K)

    def measure(self, run: difflab.Run, seed: int, **sampling: object) -> dict[str, Stat]:
        """Ratio, precision and recall of `draws` disjoint n-sample subsets of one sample of the run."""
        return self.measure_points(run.sample(self.n * self.draws, seed=seed, progress=False, **sampling))

    def measure_data(self) -> dict[str, Stat]:
        """The same figures for a fresh draw of the data: what a perfect model scores."""
        return self.measure_points(builtin(self.name, self.n * self.draws, TRUTH_SEED - 1).x)

    def measure_points(self, x: np.ndarray) -> dict[str, Stat]:
        """Ratio, precision and recall of `draws` disjoint n-point subsets of x, against the truth and floors."""
        figures = [self._compare(x[i * self.n : (i + 1) * self.n]) for i in range(self.draws)]
        distance, precision, recall = (list(f) for f in zip(*figures, strict=True))
        return {
            "ratio": Stat([d / self.floor.mean for d in distance]),
            "precision": Stat(precision),
            "precision_floor": self.precision_floor,
            "recall": Stat(recall),
            "recall_floor": self.recall_floor,
        }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--draws", type=int, default=25, help="disjoint n-sample subsets of each run's samples")
    p.add_argument("--floor-draws", type=int, default=100, help="fresh n-point data draws for the floors")
    p.add_argument("--truth", type=int, default=20_000)
    p.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=list(SAMPLERS))
    p.add_argument("--keep", type=Path, default=Path("runs/teachers"))
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="training options for every run")
    p.add_argument("--evaluate", action="store_true", help="measure with Run.evaluate instead (n-point truths)")
    p.add_argument("--sampler-steps", type=int, help="steps of the default sampler (default: the run's own)")
    args = p.parse_args()
    options = overrides(args.set)
    samplers = {
        k: v | ({"steps": args.sampler_steps} if k == "default" and args.sampler_steps else {})
        for k, v in SAMPLERS.items()
    }
    against = "fresh n-point draws (Run.evaluate)" if args.evaluate else f"{args.truth:,} data points"
    print(
        f"{pin_threads(1)}; {args.draws} draws of n = {args.n} samples against {against}, floors of "
        f"{args.floor_draws} data draws; "
        f"options {options or 'defaults'}; default sampler {samplers['default'] or 'as the run says'}\n"
    )
    print("| set | seed | steps | sampler | ratio | precision (floor) | recall (floor) | sharp | train s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.sets:
        yardstick = Yardstick(name, args.truth, args.n, args.draws, args.floor_draws)
        if not args.evaluate:
            m = yardstick.measure_data()
            print(
                f"| {name} | | | another draw of the data | {cell(m['ratio'])} | {cell(m['precision'], 3)} "
                f"({cell(m['precision_floor'], 3)}) | {cell(m['recall'], 3)} ({cell(m['recall_floor'], 3)}) | "
                f"{'yes' if sharp(m) else 'NO'} | |",
                flush=True,
            )
        for seed in args.seeds:
            start = time.perf_counter()
            run = trained(name, args.keep / f"s{seed}", name, seed=seed, **options)
            seconds = time.perf_counter() - start
            for sampler in args.samplers:
                if args.evaluate:
                    m = run.evaluate(n=args.n, draws=args.draws, progress=False, save=False, **samplers[sampler])
                else:
                    m = yardstick.measure(run, seed=seed, **samplers[sampler])
                print(
                    f"| {name} | {seed} | {run.config.steps} | {sampler} | {cell(m['ratio'])} | "
                    f"{cell(m['precision'], 3)} ({cell(m['precision_floor'], 3)}) | {cell(m['recall'], 3)} "
                    f"({cell(m['recall_floor'], 3)}) | {'yes' if sharp(m) else 'NO'} | {seconds:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
