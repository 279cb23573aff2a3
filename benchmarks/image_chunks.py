"""Sampling speed of an image run against the chunk size (samples drawn per batch).

    python benchmarks/image_chunks.py RUN [--n 200] [--chunks 200 50] [--repeats 2] [--threads 2]

Draws `--n` samples of a class-conditional image run (its default sampler: DDIM 50 trailing steps, guidance
2, so each batch runs twice through the network) with each chunk size in turn, `--repeats` rounds side by
side, and prints samples/s. Chose the image default chunk size (difflab/images/defaults.py).
"""

from __future__ import annotations

import argparse
import time

import difflab
from common import pin_threads


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", help="a class-conditional image run, e.g. from benchmarks/mnist5k.py")
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--chunks", type=int, nargs="+", default=[200, 50])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    print(pin_threads(args.threads))
    run = difflab.load(args.run)
    labels = run.labels_for(args.n, None, every_class=True)
    if labels is None:
        p.error(f"{args.run} is not a class-conditional run")
    print("| round | chunk size | seconds | samples/s |\n|---|---|---|---|")
    for round_ in range(args.repeats):
        for chunk in args.chunks:
            start = time.perf_counter()
            run.draw(args.n, run.resolve(chunk_size=chunk), labels=labels, seed=1, progress=False)
            seconds = time.perf_counter() - start
            print(f"| {round_ + 1} | {chunk} | {seconds:.1f} | {args.n / seconds:.2f} |", flush=True)


if __name__ == "__main__":
    main()
