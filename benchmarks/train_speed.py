"""Training throughput (steps/s) on 1 and 2 CPU processes (torchrun, gloo), with and without torch.compile.

    python benchmarks/train_speed.py [--steps 300] [--hidden 256] [--batch-size 1024]

Each configuration runs in fresh processes: `warmup` steps (which include compilation) are timed apart from
the measured steps. One process runs with 1 thread and with every core; under torchrun each of the 2
processes gets half of the cores. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def worker(args: argparse.Namespace) -> None:
    """One training process: build the Trainer as `difflab train` does, time warm-up and measured steps."""
    import torch

    from difflab import distributed
    from difflab.config import make_config
    from difflab.data.source import load_points
    from difflab.points.kind import PointKind
    from difflab.trainer import Trainer

    cfg = make_config(
        {
            "steps": args.warmup + args.steps,
            "batch_size": args.batch_size,
            "hidden": args.hidden,
            "depth": args.depth,
            "n_data": 20_000,
            "device": "cpu",
            "compile": args.compile,
        }
    )
    world, device = distributed.start(cfg.device)
    data = PointKind().training_set(load_points(cfg.data, cfg.n_data, 0), cfg, cfg.data)
    trainer = Trainer(cfg, data, world=world, device=device)  # in memory: nothing written
    start = time.perf_counter()
    for _ in range(args.warmup):
        trainer.train_step()
    warm = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step()
    seconds = time.perf_counter() - start
    if world.is_main:
        row = {"warmup_s": warm, "steps_per_s": args.steps / seconds, "threads": torch.get_num_threads()}
        print(json.dumps(row))
    distributed.stop(world)


def measure(procs: int, threads: int, compile_: bool, args: argparse.Namespace) -> dict[str, float]:
    """Launch one configuration (plain python or torchrun) and read rank 0's JSON line."""
    flags = ["--worker", "--steps", str(args.steps), "--warmup", str(args.warmup), "--hidden", str(args.hidden)]
    flags += ["--depth", str(args.depth), "--batch-size", str(args.batch_size)] + (["--compile"] if compile_ else [])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")]))}
    env["OMP_NUM_THREADS"] = str(threads)
    if procs == 1:
        cmd = [sys.executable, __file__, *flags]
    else:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"]
        cmd = [*launcher, __file__, *flags]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--compile", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--steps", type=int, default=300, help="measured steps (default 300)")
    p.add_argument("--warmup", type=int, default=30, help="untimed-for-throughput steps first (default 30)")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--depth", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=1024, help="global batch (default 1024)")
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    print(f"MLP hidden {args.hidden}, depth {args.depth}, global batch {args.batch_size}, {args.steps} steps")
    print("| processes | threads/process | torch.compile | warm-up s | steps/s | samples/s |")
    print("|---|---|---|---|---|---|")
    cores = os.cpu_count() or 1
    layouts = [(1, 1), (1, cores), (2, max(cores // 2, 1))]
    for procs, threads in dict.fromkeys(layouts):
        for compile_ in (False, True):
            r = measure(procs, threads, compile_, args)
            print(
                f"| {procs} | {r['threads']} | {'yes' if compile_ else 'no'} | {r['warmup_s']:.1f} "
                f"| {r['steps_per_s']:.1f} | {r['steps_per_s'] * args.batch_size:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
