"""`make demo`: train on moons, then sample, evaluate and draw every figure in the same process.

    python examples/demo.py [RUN_DIR]

The same as `difflab train --data moons --out runs/demo --steps 700 --batch-size 2048 --lr 6e-3`, then
`difflab sample/evaluate/plot/animate/report runs/demo`, without five Python start-ups. The demo
trains 700 steps of 2,048 points where the default trains 15,000 of 512: on two cores a large batch keeps both
busy (about 80,000 points a second against 45,000), so the demo fits in 45 s; the default draws thin structures
sharper (benchmarks/README.md, "make demo"). Sampling uses the default: 20 network evaluations of DPM-Solver++(2M)
instead of the 1000-step chain (benchmarks/RESULTS-defaults.md measures how close it comes).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import difflab

#: Measured on the idle 2-core machine (benchmarks/README.md, "make demo"): 4,000 default steps took 66 s end to end.
TRAINING = {"steps": 700, "batch_size": 2048, "lr": 6e-3}


def main(out: Path) -> None:
    start = time.perf_counter()
    run = difflab.train("moons", out, **TRAINING)
    samples = run.sample(10_000)
    np.savetxt(out / "samples.csv", samples, delimiter=",", header="x0,x1", comments="", fmt="%.6g")
    print(run.evaluate().summary())
    figures = run.plot()
    gif = run.animate()
    report = run.report(figures=False)
    names = ", ".join(p.name for p in [*figures, gif])
    print(
        f"demo done in {time.perf_counter() - start:.0f} s: samples in {out}/samples.csv, figures ({names}) in "
        f"{out}/plots/, a report in {report}"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "runs/demo"))
