"""Benchmark: how faithful are one class's samples to that class's data, at each guidance weight?

Trains conditional point runs at the default config on three labelled sets difflab's defaults were not tuned
on: the series' circles_vs_moons, a checkerboard in metres with string labels ("west"/"east", a CSV written
here), and a 5-D mixture of three Gaussian classes ("alpha", "beta", "gamma"). For each seed, class and
guidance weight w it evaluates the class's samples against held-out data of that class (`Run.evaluate(label=...)`:
energy-distance ratio, k-NN precision and recall), with the default sampler. Prints, per set and w, the mean ±
std over seeds × classes × draws: the w whose samples are closest to their class is the faithful default.

    python benchmarks/class_fidelity.py [--seeds 0 1] [--weights 1 1.5 2 3] [--keep runs/fidelity]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np

import difflab
from common import pin_threads, trained
from difflab.evaluation import Stat


def checkerboard_csv(path: Path, n: int = 20_000, seed: int = 0) -> Path:
    """A 4 × 4 checkerboard of 500 m squares (black squares only), labelled by the half it lies in."""
    rng = np.random.default_rng(seed)
    cells = [(i, j) for i in range(4) for j in range(4) if (i + j) % 2 == 0]
    pick = rng.integers(len(cells), size=n)
    xy = (np.array(cells)[pick] + rng.uniform(size=(n, 2))) * 500.0
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["x", "y", "label"])
        for x, y in xy:
            writer.writerow([f"{x:.2f}", f"{y:.2f}", "west" if x < 1000 else "east"])
    return path


def mixture(n: int = 15_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three 5-D Gaussian classes with different means, scales and correlations."""
    rng = np.random.default_rng(seed)
    names = np.array(["alpha", "beta", "gamma"])
    labels = rng.integers(3, size=n)
    means = np.array([[0, 0, 0, 0, 0], [3, -2, 1, 0, 4], [-3, 2, 4, -1, 0]], dtype=float)
    scales = np.array([0.5, 1.0, 0.3])
    mixing = rng.normal(size=(3, 5, 5)) / np.sqrt(5)
    x = np.stack([means[k] + scales[k] * (mixing[k] @ rng.normal(size=5)) for k in labels])
    return x, names[labels]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--weights", type=float, nargs="+", default=[1.0, 1.5, 2.0, 3.0])
    parser.add_argument("--n", type=int, default=1000, help="samples per class and draw")
    parser.add_argument("--draws", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="keep the runs here (and reuse them)")
    args = parser.parse_args()
    print(pin_threads(1))
    folder = args.keep or Path("runs/fidelity")
    folder.mkdir(parents=True, exist_ok=True)
    x5, y5 = mixture()
    sets = {
        "circles_vs_moons": ("circles_vs_moons", None),
        "checkerboard (m)": (str(checkerboard_csv(folder / "checkerboard.csv")), None),
        "5-D mixture": (x5, y5),
    }
    print("| set | w | ratio | precision | recall | (floor: precision / recall) |")
    print("|---|---|---|---|---|---|")
    for name, (data, labels) in sets.items():
        results: dict[float, dict[str, list[float]]] = {
            w: {"ratio": [], "p": [], "r": [], "pf": [], "rf": []} for w in args.weights
        }
        for seed in args.seeds:
            start = time.perf_counter()
            tag = name.split()[0].replace("-", "") + f"-seed{seed}"
            if labels is None:
                run = trained(data, folder, tag, conditional=True, seed=seed)
            else:
                run = difflab.load(folder / tag) if (folder / tag / "config.json").exists() else difflab.train(
                    data, folder / tag, labels=labels, conditional=True, seed=seed, progress=False
                )  # fmt: skip
            print(f"<!-- {name} seed {seed}: trained in {time.perf_counter() - start:.0f} s -->", flush=True)
            for w in args.weights:
                for cls in run.class_names or []:
                    ev = run.evaluate(n=args.n, draws=args.draws, label=cls, guidance=w, seed=seed,
                                      progress=False, save=False)  # fmt: skip
                    out = results[w]
                    out["ratio"] += ev["ratio"].values
                    out["p"] += ev["precision"].values
                    out["r"] += ev["recall"].values
                    out["pf"] += ev["precision_floor"].values
                    out["rf"] += ev["recall_floor"].values
        for w, out in results.items():
            floors = f"{np.mean(out['pf']):.3f} / {np.mean(out['rf']):.3f}"
            print(f"| {name} | {w:g} | {Stat(out['ratio']).format(2)} | {Stat(out['p']).format(3)} | "
                  f"{Stat(out['r']).format(3)} | {floors} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
