"""Benchmark: does every target (x0, ε, v, score) train to the quality x0 reaches?

For each dataset and target, trains at the default config (only `--target` changes) and measures
the energy-distance ratio exactly as `difflab evaluate --clip C` does (fresh i.i.d. data, same
seed) for each sampling clip mode, plus the training time. Prints a Markdown table. Results:
benchmarks/RESULTS-targets.md.

    PYTHONPATH=src python benchmarks/targets.py [--data moons circles] [--targets x0 eps v score] [--clip none clip]

One torch thread: on a shared 2-core machine, two threads contending with other jobs ran ~100x slower.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from difflab.cli import build_parser, evaluate
from difflab.config import make_config
from difflab.data.source import load_points
from difflab.denoiser import CLIP_KINDS
from difflab.process import TARGETS
from difflab.trainer import Trainer, point_training_set


def train_and_evaluate(
    data: str, target: str, root: Path, extra: dict[str, str], clips: list[str]
) -> tuple[list[float], float]:
    """Train one run at the default config; return its ratio under each sampling `--clip`, and training seconds."""
    cfg = make_config({"data": data, "target": target, **extra})
    run_dir = root / f"{data}-{target}"
    trainer = Trainer(cfg, point_training_set(load_points(cfg.data, cfg.n_data, cfg.seed), cfg), run_dir)
    result = trainer.fit(progress=False)
    ratios = [evaluate(build_parser().parse_args(["evaluate", str(run_dir), "--clip", c]))[0].ratio for c in clips]
    return ratios, result.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["moons", "circles"])
    parser.add_argument("--targets", nargs="+", default=list(TARGETS), choices=TARGETS)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every run")
    parser.add_argument("--clip", nargs="+", default=["none", "clip"], choices=CLIP_KINDS, help="sampling clip modes")
    parser.add_argument("--keep", type=Path, default=None, help="keep the run directories here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    extra = dict(item.split("=", 1) for item in args.set)
    print("| data | target | " + " | ".join(f"ratio, clip {c}" for c in args.clip) + " | train s |")
    print("|---|---|" + "---:|" * len(args.clip) + "---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for data in args.data:
            for target in args.targets:
                ratios, seconds = train_and_evaluate(data, target, args.keep or Path(tmp), extra, args.clip)
                cells = " | ".join(f"{r:.2f}" for r in ratios)
                print(f"| {data} | {target} | {cells} | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
