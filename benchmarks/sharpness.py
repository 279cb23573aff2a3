"""Where does blur come from? k-NN precision (samples on the data's support) of training variants, next to its floor.

    python benchmarks/sharpness.py [--sets moons complex spiral.csv] [--variants ...] [--n 3000] [--draws 3]

Each variant changes one thing of the default config (network width or depth, Fourier features of the input,
training length, EMA, learning rate) and is trained on each set; precision and recall (k = 10) and the
energy-distance ratio come from `Run.evaluate` with the default sampler (mean ± std over draws). Precision below
its floor means samples between the data's thin structures. The spiral is the CSV that benchmarks/fewstep.py
writes; with the same --keep folder the default runs of benchmarks/fewstep.py are reused.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from common import cell, pin_threads, trained
from fewstep import write_custom_sets

VARIANTS: dict[str, dict[str, object]] = {
    "default": {},
    "hidden 256": {"hidden": 256},
    "depth 6": {"depth": 6},
    "no fourier": {"fourier_features": 0},
    "steps 30000": {"steps": 30_000},
    "ema 0.9995": {"ema_decay": 0.9995},
    "lr 1e-3": {"lr": 1e-3},
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", nargs="+", default=["moons", "complex", "spiral.csv"])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--n", type=int, default=3000)
    p.add_argument("--draws", type=int, default=3)
    p.add_argument("--keep", type=Path, default=Path("runs/sharpness"))
    args = p.parse_args()
    print(f"{pin_threads(1)}; n = {args.n}, {args.draws} draws; default sampler")
    write_custom_sets(args.keep / "data")
    print("| set | variant | precision (floor) | recall (floor) | ratio | train s |\n|---|---|---|---|---|---|")
    for name in args.sets:
        data = str(args.keep / "data" / name) if name.endswith(".csv") else name
        for variant in args.variants:
            start = time.perf_counter()
            stem = name.removesuffix(".csv")
            folder = stem if variant == "default" else f"{stem}-{variant.replace(' ', '-')}"  # fewstep.py's names
            run = trained(data, args.keep, folder, **VARIANTS[variant])
            seconds = time.perf_counter() - start
            ev = run.evaluate(n=args.n, draws=args.draws, sampler="ddpm", progress=False, save=False)
            print(
                f"| {name} | {variant} | {cell(ev['precision'], 3)} ({cell(ev['precision_floor'], 3)}) | "
                f"{cell(ev['recall'], 3)} ({cell(ev['recall_floor'], 3)}) | {cell(ev['ratio'])} | {seconds:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
