"""Benchmark: does every target (x0, ε, v, score) train to the quality ε and v reach?

For each dataset and target, trains at the default config (only the target changes) and evaluates as
`difflab evaluate --clip C` does, for each sampling clip mode: ratio mean ± std over draws.

    python benchmarks/targets.py [--data moons circles] [--targets x0 eps v score] [--clip none clip]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import cell, overrides, pin_threads, trained
from difflab.denoiser import CLIP_KINDS
from difflab.process import TARGETS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["moons", "circles"])
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every run")
    parser.add_argument("--clip", nargs="+", default=["none", "clip"], choices=CLIP_KINDS, help="sampling clip modes")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--draws", type=int, default=4)
    parser.add_argument("--keep", type=Path, default=None, help="keep (and reuse) the run directories here")
    args = parser.parse_args()
    print(pin_threads(1))
    extra = overrides(args.set)
    print("| data | target | " + " | ".join(f"ratio, clip {c}" for c in args.clip) + " | train s |")
    print("|---|---|" + "---|" * len(args.clip) + "---:|")
    for data in args.data:
        for target in args.targets:
            start = time.perf_counter()
            run = trained(data, args.keep, f"{data}-{target}", target=target, **extra)
            seconds = time.perf_counter() - start
            cells = [
                cell(
                    run.evaluate(n=args.n, draws=args.draws, sampler="ddpm", clip=c, progress=False, save=False)[
                        "ratio"
                    ]
                )
                for c in args.clip
            ]
            print(f"| {data} | {target} | {' | '.join(cells)} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
