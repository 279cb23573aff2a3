"""Training throughput against torch's thread count, on an idle machine and next to one busy process.

    python benchmarks/threads.py [--steps 1500] [--repeats 3]

Each measurement is a fresh process training the default config on moons (`difflab.train`, in memory) with
`threads` = 1, 2 (all cores here) or 0 (difflab's default: one per core other programs leave free, refitted
every few seconds). "loaded" starts one busy Python loop (one core's worth of other work) 3 s before training
and stops it after. Prints steps/s as median [min-max] over repeats and the loaded/idle ratio per setting.
Run it on an otherwise idle machine: it measures contention, so other load falsifies it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
WORKER = (
    "import sys, difflab; r = difflab.train('moons', steps=int(sys.argv[1]), threads=int(sys.argv[2]), "
    "progress=False); print((r.training.steps - r.training.start_step) / r.training.seconds)"
)


def measure(steps: int, threads: int, loaded: bool) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, env.get("PYTHONPATH")]))
    competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if loaded else None
    try:
        if competitor is not None:
            time.sleep(3)
        out = subprocess.run(
            [sys.executable, "-c", WORKER, str(steps), str(threads)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return float(out.strip().splitlines()[-1])
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    cores = len(os.sched_getaffinity(0))
    load = os.getloadavg()[0]
    print(f"{cores} cores; load average {load:.1f} at start; default config on moons, {args.steps} steps per run")
    print("| threads | idle steps/s | next to one busy process | loaded / idle |\n|---|---|---|---|")
    for threads in (1, cores, 0):
        results = {}
        for loaded in (False, True):
            values = [measure(args.steps, threads, loaded) for _ in range(args.repeats)]
            results[loaded] = values
        idle, busy = np.median(results[False]), np.median(results[True])
        cells = [f"{np.median(v):.0f} [{min(v):.0f}-{max(v):.0f}]" for v in (results[False], results[True])]
        name = "0 (default: free cores)" if threads == 0 else str(threads)
        print(f"| {name} | {cells[0]} | {cells[1]} | {busy / idle:.0%} |", flush=True)


if __name__ == "__main__":
    main()
