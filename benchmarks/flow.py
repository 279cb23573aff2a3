"""v against flow matching at equal training time: six point sets, and mnist5k with --images.

    python benchmarks/flow.py --keep runs/flow [--data DIR] [--seeds 0 1] [--n 2000] [--draws 6] [--arms v flow]
    python benchmarks/flow.py --keep runs/flow --images [--per-class 30] [--draws 2]

Points: the default config (v on the cosine schedule) against `target="flow"` (the flow path), everything else the
same (steps, batch, network), and with --arms either of them trained in continuous time (`continuous_time=True`),
on the six sets of benchmarks/fewstep.py, one run per training seed. Each run is evaluated with the full ancestral
chain and with 10 model calls of the default few-step sampler (`steps=10`, no sampler named), n points per draw; a
cell pools every draw of every seed (mean ± std). "train s" is the mean training time of a run. Images: mnist5k
with benchmarks/mnist5k.py's configuration, v against flow, seed 0; conditional accuracy and Fréchet ratio at the
image default guidance, DDPM on its default 50 steps, the few-step default at 10 calls and UniPC on log-SNR spacing at
10 calls.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import difflab
from common import cell, pin_threads, trained
from difflab.evaluation import Stat
from fewstep import SETS, write_custom_sets
from mnist5k import CONFIG as MNIST_CONFIG

#: The runs compared: each arm is the default config with these options (continuous time: `continuous_time`).
ARMS = {
    "v": {},
    "flow": {"target": "flow"},
    "v, continuous t": {"continuous_time": True},
    "flow, continuous t": {"target": "flow", "continuous_time": True},
}
FOLDERS = {"v": "v", "flow": "flow", "v, continuous t": "v-ct", "flow, continuous t": "flow-ct"}
CALLS = 10


def pooled(stats: list[Stat]) -> Stat:
    return Stat([v for s in stats for v in s.values])


def training_seconds(run: difflab.Run) -> float:
    return float(run.metrics[-1]["elapsed"]) if run.metrics else float("nan")


def points(args: argparse.Namespace) -> None:
    folder = args.data or args.keep / "data"
    write_custom_sets(folder)
    print(f"\n{pin_threads(1)}; seeds {args.seeds}; n = {args.n}, {args.draws} draws per run")
    print(
        "\n| set | arm | train s | full chain: ratio | precision | recall "
        f"| {CALLS} calls: ratio | precision | recall | {CALLS} calls / full |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.sets:
        data = str(folder / name) if name.endswith(".csv") else name
        for arm in args.arms:
            options = ARMS[arm]
            full: dict[str, list[Stat]] = {"ratio": [], "precision": [], "recall": []}
            few: dict[str, list[Stat]] = {"ratio": [], "precision": [], "recall": []}
            seconds = []
            for seed in args.seeds:
                run = trained(
                    data, args.keep / f"{FOLDERS[arm]}-s{seed}", name.removesuffix(".csv"), seed=seed, **options
                )
                seconds.append(training_seconds(run))
                chain = run.evaluate(n=args.n, draws=args.draws, sampler="ddpm", progress=False, save=False)
                quick = run.evaluate(n=args.n, draws=args.draws, steps=CALLS, progress=False, save=False)
                for key in full:
                    full[key].append(chain[key])
                    few[key].append(quick[key])
            f = {k: pooled(v) for k, v in full.items()}
            q = {k: pooled(v) for k, v in few.items()}
            print(
                f"| {name} | {arm} | {np.mean(seconds):.0f} | {cell(f['ratio'])} | {cell(f['precision'], 3)} "
                f"| {cell(f['recall'], 3)} | {cell(q['ratio'])} | {cell(q['precision'], 3)} | {cell(q['recall'], 3)} "
                f"| {q['ratio'].mean / f['ratio'].mean:.2f} |",
                flush=True,
            )


def images(args: argparse.Namespace) -> None:
    print(
        f"\nmnist5k, seed 0, {args.per_class} samples per class × {args.draws} draws, threads {args.threads or 'auto'}"
    )
    print(
        "\n| target | train min | sampling | calls | conditional accuracy | Fréchet ratio |\n|---|---|---|---|---|---|"
    )
    for target in ("v", "flow"):
        # mnist5k.py's configuration (an ε run) with the target swapped; the flow target brings its own path
        config = {key: value for key, value in MNIST_CONFIG.items() if key != "schedule" or target == "v"}
        run = trained("mnist5k", args.keep / "mnist5k", target, **{**config, "target": target, "threads": args.threads})
        minutes = training_seconds(run) / 60
        ways = (
            ("DDPM, the images' ancestral default", {"sampler": "ddpm"}),
            ("few-step default", {"steps": CALLS}),
            ("UniPC, log-SNR spacing", {"sampler": "unipc", "steps": CALLS, "spacing": "logsnr"}),
        )
        for label, sampling in ways:
            ev = run.evaluate(n=args.per_class, draws=args.draws, progress=False, save=False, **sampling)
            print(
                f"| {target} | {minutes:.1f} | {label} ({ev.sampling['sampler']}) | {run.resolve(**sampling).steps} "
                f"| {cell(ev['accuracy'], 3)} | {cell(ev['frechet_ratio'])} |",
                flush=True,
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keep", type=Path, default=Path("runs/flow"), help="keep (and reuse) the runs here")
    p.add_argument("--data", type=Path, help="where the CSV sets are (or are written); default KEEP/data")
    p.add_argument("--sets", nargs="+", default=SETS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--arms", nargs="+", default=["v", "flow"], choices=list(ARMS), help="which runs to compare")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--draws", type=int, default=6)
    p.add_argument("--images", action="store_true", help="mnist5k instead of the point sets")
    p.add_argument("--per-class", type=int, default=30)
    p.add_argument("--threads", type=int, default=0, help="torch threads for the image runs (0: the free cores)")
    args = p.parse_args()
    start = time.perf_counter()
    images(args) if args.images else points(args)
    print(f"\ntotal {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
