"""Part 1 benchmark: train the default config on each series dataset; print time and quality.

    python benchmarks/series.py [--datasets moons circles ...] [--steps N] [--n 5000]

Quality is `difflab evaluate`'s number: the energy distance between 5000 fresh samples (full
ancestral chain) and 5000 fresh i.i.d. data points, divided by the mean of the same distance for four
independent draws of the data (the floor). Target: ratio ≤ 2 for every dataset.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from difflab.cli import build_parser, evaluate
from difflab.config import make_config
from difflab.data.toy import SERIES_DATASETS, builtin
from difflab.trainer import Trainer, point_training_set


def evaluate_run(run_dir: Path, n: int) -> tuple[float, float]:
    """(ratio, seconds) of `difflab evaluate RUN --n n`: the same code path, so the table is what it prints."""
    start = time.perf_counter()
    report, _, _ = evaluate(build_parser().parse_args(["evaluate", str(run_dir), "--n", str(n)]))
    return report.ratio, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(SERIES_DATASETS))
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    args = parser.parse_args()
    overrides = dict(kv.split("=", 1) for kv in args.set)
    print(f"torch threads: {torch.get_num_threads()}; overrides: {overrides or 'none (defaults)'}")
    print(f"| dataset | train steps | train time (s) | evaluate, n={args.n} (s) | ratio (distance / floor) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.datasets:
            cfg = make_config({**overrides, "data": name})
            start = time.perf_counter()
            trainer = Trainer(cfg, point_training_set(builtin(name, cfg.n_data, cfg.seed), cfg), Path(tmp) / name)
            trainer.fit(progress=False)
            train_s = time.perf_counter() - start
            ratio, sample_s = evaluate_run(Path(tmp) / name, args.n)
            print(f"| {name} | {cfg.steps} | {train_s:.1f} | {sample_s:.1f} | {ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
