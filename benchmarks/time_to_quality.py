"""Training time from nothing to ratio ≤ 1.5, per set, and what shortens it.

    python benchmarks/time_to_quality.py [--sets moons circles parabola complex] [--seeds 0 1]
                                         [--variants default "lr 4e-3" ...] [--every 500] [--stop-at-target]

Each run trains with the default config (or one variant of it) and, every `--every` steps, evaluates the EMA
weights as `difflab evaluate --steps 20` does (the few-step default; n = 2000, 2 draws). The training
seconds (evaluation excluded) at the first evaluation with a mean ratio ≤ 1.5 is the time to quality; it is
reported per seed and as mean ± std. One torch thread. The learning-rate schedule decays over each run's full
`steps`, as it does for a user who sets that budget.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import Any

import numpy as np

from common import pin_threads
from difflab.api import Run
from difflab.config import make_config
from difflab.evaluation import Stat
from difflab.kinds import kind_for_spec
from difflab.run import TrainedModel
from difflab.trainer import Trainer

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "lr 4e-3": {"lr": 4e-3},
    "batch 256": {"batch_size": 256},
    "batch 1024": {"batch_size": 1024},
    "ema 0.995": {"ema_decay": 0.995},
    "hidden 256": {"hidden": 256},
}
TARGET = 1.5


class Reached(Exception):
    """Raised from the evaluation hook to end a run once it reached the target (with --stop-at-target)."""


def curve(
    data: str, options: dict[str, Any], every: int, n: int, draws: int, stop: bool
) -> list[tuple[int, float, float, float]]:
    """(step, training seconds, ratio mean, precision mean) at every `every` steps of one run."""
    kind = kind_for_spec(data)
    cfg = make_config({**options, "data": data, "sample_every": every, "threads": 1})
    loaded = kind.load_spec(data, cfg)
    training_set = kind.training_set(loaded, cfg, data)
    trainer = Trainer(cfg, training_set)
    points: list[tuple[int, float, float, float]] = []

    def evaluate(step: int, ema: Any) -> None:
        run = Run(
            TrainedModel(cfg, training_set.info, ema), training_set.source, step=step, data=kind.data_copy(loaded)
        )
        ev = run.evaluate(n=n, draws=draws, steps=20, progress=False, save=False)
        points.append((step, trainer.elapsed, ev["ratio"].mean, ev["precision"].mean))
        if stop and ev["ratio"].mean <= TARGET:
            raise Reached

    with contextlib.suppress(Reached):
        trainer.fit(progress=False, on_sample=evaluate)
    return points


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sets", nargs="+", default=["moons", "circles", "parabola", "complex"])
    p.add_argument("--variants", nargs="+", default=["default"], choices=list(VARIANTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--every", type=int, default=500)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--draws", type=int, default=2)
    p.add_argument(
        "--stop-at-target", action="store_true", help="end each run at the target (the end columns then show that step)"
    )
    args = p.parse_args()
    print(f"{pin_threads(1)}; evaluation every {args.every} steps, n = {args.n}, {args.draws} draws, 20-step sampler")
    print(
        "| set | variant | seconds to ratio ≤ 1.5 (per seed) | mean ± std | steps | ratio at the end | "
        "precision at the end |\n|---|---|---|---|---|---|---|"
    )
    start = time.perf_counter()
    for data in args.sets:
        for variant in args.variants:
            hits, steps, ends, precisions = [], [], [], []
            for seed in args.seeds:
                options = {**VARIANTS[variant], "seed": seed}
                points = curve(data, options, args.every, args.n, args.draws, args.stop_at_target)
                first = next((pt for pt in points if pt[2] <= TARGET), None)
                hits.append(first[1] if first else float("nan"))
                steps.append(first[0] if first else None)
                ends.append(points[-1][2])
                precisions.append(points[-1][3])
            reached = [h for h in hits if not np.isnan(h)]
            per_seed = ", ".join("never" if np.isnan(h) else f"{h:.0f}" for h in hits)
            summary = Stat(reached).format(0) if len(reached) == len(hits) else f"{len(reached)} of {len(hits)} reached"
            print(
                f"| {data} | {variant} | {per_seed} | {summary} | {', '.join(str(s) for s in steps)} | "
                f"{Stat(ends).format()} | {Stat(precisions).format(3)} |",
                flush=True,
            )
    print(f"\ntotal {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
