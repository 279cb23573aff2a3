"""Benchmark: how long every call on a default point run takes, beside `train` (target: ≤ 10 s each on 2 cores).

Trains the default config on a 2-D CSV of 10,000 points (a noisy spiral, written here; trained once and kept),
then times each `Run` method in this process and each CLI command as its own process (start-up included), with
the default sampling options, on two torch threads.

    python benchmarks/call_times.py [--keep runs/calls] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import difflab
from common import pin_threads


def spiral_csv(path: Path, n: int = 10_000) -> Path:
    rng = np.random.default_rng(0)
    t = rng.uniform(0.5, 3 * np.pi, n)
    xy = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) + rng.normal(scale=0.15, size=(n, 2))
    np.savetxt(path, xy, delimiter=",", header="x,y", comments="", fmt="%.5f")
    return path


def timed(action: Callable[[], object], repeat: int) -> list[float]:
    seconds = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", type=Path, default=Path("runs/calls"))
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print(pin_threads(2))
    args.keep.mkdir(parents=True, exist_ok=True)
    data = spiral_csv(args.keep / "spiral.csv")
    start = time.perf_counter()
    run = difflab.train(data, args.keep / "run", progress=False)
    print(f"<!-- trained or reused in {time.perf_counter() - start:.0f} s, step {run.step} -->")
    work = args.keep / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    other = args.keep / "other"
    if not other.exists():
        shutil.copytree(args.keep / "run", other)
    api: dict[str, Callable[[], object]] = {
        "run.sample(10000)": lambda: run.sample(10_000, progress=False),
        "run.evaluate()": lambda: run.evaluate(progress=False),
        "run.plot()": lambda: run.plot(work / "plots", progress=False),
        "run.animate()": lambda: run.animate(work / "a.gif", progress=False),
        "run.report()": lambda: run.report(progress=False),
        "run.export()": lambda: run.export(work / f"export-{time.perf_counter_ns()}"),
        "difflab.compare()": lambda: difflab.compare([args.keep / "run", other]),
    }
    cli = {
        "difflab sample": ["sample", str(args.keep / "run"), "--out", str(work / "s.csv")],
        "difflab evaluate": ["evaluate", str(args.keep / "run")],
        "difflab plot": ["plot", str(args.keep / "run"), "--out", str(work / "cli-plots")],
        "difflab animate": ["animate", str(args.keep / "run"), "--out", str(work / "cli.gif")],
        "difflab report": ["report", str(args.keep / "run")],
        "difflab export": ["export", str(args.keep / "run"), "--diffusers", str(work / "cli-export-{k}")],
        "difflab compare": ["compare", str(args.keep / "run"), str(other)],
        "difflab datasets": ["datasets"],
    }
    print("| call | seconds (each of the repeats) |\n|---|---|")
    for name, action in api.items():
        print(f"| `{name}` | {' / '.join(f'{s:.1f}' for s in timed(action, args.repeat))} |", flush=True)
    for name, argv in cli.items():
        counter = iter(range(args.repeat))

        def command(argv: list[str] = argv, counter: object = counter) -> None:
            k = next(counter)  # type: ignore[call-overload]
            cmd = [sys.executable, "-m", "difflab", *(a.replace("{k}", str(k)) for a in argv)]
            subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "2"})

        print(f"| `{name}` | {' / '.join(f'{s:.1f}' for s in timed(command, args.repeat))} |", flush=True)


if __name__ == "__main__":
    main()
