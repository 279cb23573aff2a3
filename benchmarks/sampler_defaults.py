"""Benchmark: which sampler a point run's calls use by default, for v and ε targets alike.

Trains moons with the v and the ε target (4,000 steps of batch 2,048 at lr 6e-3, as `make demo` does) on two
seeds, then evaluates each candidate (sampler, steps, clipping) as `difflab evaluate` does: energy-distance
ratio and k-NN precision/recall, mean ± std over draws, against the full ancestral chain.

    python benchmarks/sampler_defaults.py [--keep runs/trap] [--seeds 0 1] [--n 3000] [--draws 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import difflab
from common import cell, pin_threads

CANDIDATES = {
    "ddpm, all steps": {"sampler": "ddpm", "clip": "none"},
    "ddpm 100, no clip": {"sampler": "ddpm", "steps": 100, "clip": "none"},
    "ddpm 100, clip": {"sampler": "ddpm", "steps": 100, "clip": "clip"},
    "ddim 20, no clip": {"sampler": "ddim", "steps": 20, "clip": "none"},
    "ddim 20, clip": {"sampler": "ddim", "steps": 20, "clip": "clip"},
    "dpmpp_2m 20, no clip": {"sampler": "dpmpp_2m", "steps": 20, "clip": "none"},
    "dpmpp_2m 20, clip": {"sampler": "dpmpp_2m", "steps": 20, "clip": "clip"},
    "dpmpp_2m 20, dynamic": {"sampler": "dpmpp_2m", "steps": 20, "clip": "dynamic"},
    "dpmpp_2m 50, clip": {"sampler": "dpmpp_2m", "steps": 50, "clip": "clip"},
    "dpmpp_2m_sde 20, no clip": {"sampler": "dpmpp_2m_sde", "steps": 20, "clip": "none"},
    "dpmpp_2m_sde 20, clip": {"sampler": "dpmpp_2m_sde", "steps": 20, "clip": "clip"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=Path("runs/trap"), help="keep (and reuse) the runs here")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--draws", type=int, default=3)
    args = parser.parse_args()
    print(f"{pin_threads(2)}; n = {args.n}, {args.draws} draws per seed")
    print("| target | sampler | " + " | ".join(f"seed {s}: ratio / precision" for s in args.seeds) + " |")
    print("|---|---|" + "---|" * len(args.seeds))
    for target in ("v", "eps"):
        runs = []
        for seed in args.seeds:
            start = time.perf_counter()
            options = {"target": target, "seed": seed, "steps": 4000, "batch_size": 2048, "lr": 6e-3}
            runs.append(difflab.train("moons", args.keep / f"{target}-{seed}", progress=False, **options))
            print(f"<!-- {target} seed {seed} trained in {time.perf_counter() - start:.0f} s -->", flush=True)
        for name, sampling in CANDIDATES.items():
            cells = []
            for run in runs:
                ev = run.evaluate(n=args.n, draws=args.draws, progress=False, save=False, **sampling)
                cells.append(f"{cell(ev['ratio'])} / {cell(ev['precision'], 3)}")
            print(f"| {target} | {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
