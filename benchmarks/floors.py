"""How far a mean of a few measured energy-distance floors strays from the floor, per built-in set.

    python benchmarks/floors.py [--sets ...] [--n 5000] [--groups 25]

Every ratio divides a distance by a floor, the distance between two independent draws of the data, so an error
in the floor scales all of an evaluation's ratios alike and no number of sample draws averages it away. Two
settings, per set:

- `difflab evaluate`'s (a fresh n-point truth per draw): `--groups` groups of 4 measured floors, each group's mean
  over the floor's expectation δ(1/n + 1/m) (`Reference.expected_floor`, what evaluate divides by now); the
  5th-95th percentile of that factor is how far the mean of 4, evaluate's floor before, could stray.
- `teachers.py`'s (one fixed 20,000-point truth, n = 4,000): the mean of the first 10 of 100 measured floors
  over the mean of all 100; a ratio of the tables measured with 10 floor draws times this factor is its ratio
  on the 100-draw floor.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from common import pin_threads
from difflab.data.toy import DATASETS, builtin
from difflab.metrics import Reference, standardize_like
from difflab.points.evaluation import K
from teachers import Yardstick


def evaluate_floors(name: str, n: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """(measured, expected) floors of `count` independent (truth, other) pairs of n points, as evaluate draws them."""
    measured, expected = [], []
    for j in range(count):
        truth, other = (builtin(name, n, 1_000 + 2 * j + k).x for k in (0, 1))
        t, o = standardize_like(torch.as_tensor(truth), torch.as_tensor(other))
        reference = Reference.of(t, K)
        measured.append(reference.compare(o, K)[0])
        expected.append(reference.expected_floor(n))
    return np.array(measured), np.array(expected)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    p.add_argument("--n", type=int, default=5000, help="points per draw in evaluate's setting")
    p.add_argument("--groups", type=int, default=25, help="groups of 4 measured floors in evaluate's setting")
    args = p.parse_args()
    print(f"{pin_threads(1)}; evaluate: {args.groups} groups of 4 floors at n = {args.n}; teachers.py: 100 floors\n")
    print(
        "| set | one floor's std / mean | mean of 4 / expected: 5th-95th percentile | measured / expected | "
        "teachers.py: first 10 / all 100 floors |"
    )
    print("|---|---|---|---|---|")
    for name in args.sets:
        measured, expected = evaluate_floors(name, args.n, 4 * args.groups)
        fours = measured.reshape(-1, 4).mean(axis=1) / expected.mean()
        low, high = np.percentile(fours, [5, 95])
        se = measured.std(ddof=1) / np.sqrt(len(measured)) / expected.mean()
        fixed = np.array(Yardstick(name, 20_000, 4_000, 1, 100).floor.values)
        print(
            f"| {name} | {measured.std(ddof=1) / measured.mean():.2f} | {low:.2f}–{high:.2f} | "
            f"{measured.mean() / expected.mean():.3f} ± {se:.3f} | {fixed[:10].mean() / fixed.mean():.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
