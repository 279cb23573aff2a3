"""Training time from nothing to ratio ≤ 1.5, and to sharp samples, per set, and what shortens it.

    python benchmarks/time_to_quality.py [--sets moons circles parabola complex] [--seeds 0 1]
                                         [--variants default "lr 4e-3" ...] [--every 500] [--stop-at-target]

Each run trains with the default config (or one variant of it) and, every `--every` steps, evaluates the EMA
weights as `difflab evaluate --steps 20` does (the few-step default; n = 2000, 2 draws). The training
seconds (evaluation excluded) at the first evaluation with a mean ratio ≤ 1.5 is the time to quality; the
first one that is also sharp (k-NN precision within 0.01 of its floor) is the time to sharp samples. Both are
reported per seed and as mean ± std; `--stop-at-target` ends a run once it is sharp. One torch thread. The
learning-rate schedule decays over each run's full `steps`, as it does for a user who sets that budget.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import Any

from common import pin_threads, trainer_for
from difflab.evaluation import Stat

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "lr 4e-3": {"lr": 4e-3},
    "batch 256": {"batch_size": 256},
    "batch 1024": {"batch_size": 1024},
    "ema 0.995": {"ema_decay": 0.995},
    "hidden 256": {"hidden": 256},
}
TARGET = 1.5
#: Sharp: k-NN precision at most this far below its floor (issue 14's goal).
SHARP = 0.01


class Reached(Exception):
    """Raised from the evaluation hook to end a run once it is sharp (with --stop-at-target)."""


Point = tuple[int, float, float, float, float]


def is_sharp(point: Point) -> bool:
    return point[2] <= TARGET and point[3] >= point[4] - SHARP


def curve(data: str, options: dict[str, Any], every: int, n: int, draws: int, stop: bool) -> list[Point]:
    """(step, training seconds, ratio mean, precision mean, precision floor mean) every `every` steps of a run."""
    trainer, as_run = trainer_for(data, {**options, "sample_every": every, "threads": 1})
    points: list[Point] = []

    def evaluate(step: int, ema: Any) -> None:
        ev = as_run(ema, step).evaluate(n=n, draws=draws, sampler="dpmpp_2m", steps=20, progress=False, save=False)
        points.append((step, trainer.elapsed, ev["ratio"].mean, ev["precision"].mean, ev["precision_floor"].mean))
        if stop and is_sharp(points[-1]):
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
    p.add_argument("--stop-at-target", action="store_true", help="end each run once it is sharp")
    args = p.parse_args()
    print(f"{pin_threads(1)}; evaluation every {args.every} steps, n = {args.n}, {args.draws} draws, 20-step sampler")
    print(
        "| set | variant | ratio ≤ 1.5: seconds (per seed) | steps | sharp: seconds (per seed) | steps | "
        "ratio at the end | precision at the end (floor) |\n|---|---|---|---|---|---|---|---|"
    )
    start = time.perf_counter()
    for data in args.sets:
        for variant in args.variants:
            curves = [
                curve(data, {**VARIANTS[variant], "seed": seed}, args.every, args.n, args.draws, args.stop_at_target)
                for seed in args.seeds
            ]
            good = [next((pt for pt in c if pt[2] <= TARGET), None) for c in curves]
            sharp = [next((pt for pt in c if is_sharp(pt)), None) for c in curves]
            ends = Stat([c[-1][2] for c in curves])
            precisions, floors = Stat([c[-1][3] for c in curves]), Stat([c[-1][4] for c in curves])
            print(
                f"| {data} | {variant} | {reached(good)} | {', '.join(str(pt[0]) if pt else '–' for pt in good)} | "
                f"{reached(sharp)} | {', '.join(str(pt[0]) if pt else '–' for pt in sharp)} | {ends.format()} | "
                f"{precisions.format(3)} ({floors.format(3)}) |",
                flush=True,
            )
    print(f"\ntotal {time.perf_counter() - start:.0f}s")


def reached(firsts: list[Point | None]) -> str:
    """Training seconds per seed, then mean ± std when every seed got there ("never" where one did not)."""
    per_seed = ", ".join("never" if pt is None else f"{pt[1]:.0f}" for pt in firsts)
    if any(pt is None for pt in firsts):
        return per_seed
    return f"{per_seed}: {Stat([pt[1] for pt in firsts]).format(0)}"


if __name__ == "__main__":
    main()
