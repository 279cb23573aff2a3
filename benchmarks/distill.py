"""Distilled students against their teachers: method × model calls × set, over training seeds, with the cost.

    python benchmarks/distill.py --keep runs/distill --teachers runs/flow [--seeds 0 1 2] [--calls 1 2 4]
        [--methods trajectory reflow consistency] [--sets moons circles complex spiral.csv] [--n 4000] [--draws 5]
    python benchmarks/distill.py --keep runs/distill --guided runs/fidelity [--seeds 0 1] [--weights 1 2]
    python benchmarks/distill.py --keep runs/distill --teachers runs/flow --images [--calls 4] [--per-class 20]

Teachers are the default config (v on the cosine schedule) of each set and training seed, trained or reused in
TEACHERS/v-s{seed}/{set} (the folders of benchmarks/flow.py; the CSV sets in --data, as flow.py's --data). Each
student is `Run.distill(steps=K, method=M)` with its kind's defaults, kept in KEEP/{M}-k{K}-s{seed}/{set} (reused
when finished). Every run is evaluated with n points per draw and `draws` draws; a cell pools the draws of every
seed (mean ± std). The teacher rows give its full ancestral chain and its default sampler; "× full" is a student's
energy ratio over its teacher's full chain, pooled; "distill s" is the wall time of the distill call (the
teacher's samples included), "teacher s" the teacher's own training time, both on one torch thread.

--guided FOLDER: the conditional teachers of benchmarks/class_fidelity.py (its --keep FOLDER: circles_vs_moons, a
checkerboard in metres, a 5-D mixture) and their default (4-call trajectory) students. For each guidance weight w,
each class's samples against that class's data, pooled over seeds × classes × draws: the teacher with its default
sampler, the student with guidance applied when it samples.

--images: mnist5k's v teacher of benchmarks/flow.py (TEACHERS/mnist5k/v, benchmarks/mnist5k.py's configuration with
target v; seed 0) and its trajectory students, at the images' default guidance: conditional accuracy and Fréchet
ratio, `per_class` samples per class × 2 draws. A guided call evaluates the network on the class and on no class
in one batch.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import difflab
from common import cell, pin_threads, trained
from difflab.errors import UserError
from difflab.evaluation import Stat
from fewstep import write_custom_sets

SETS = ["moons", "circles", "complex", "spiral.csv"]
SECONDS = "distill_seconds.json"


def pooled(stats: list[Stat]) -> Stat:
    return Stat([v for s in stats for v in s.values])


def student(teacher: difflab.Run, folder: Path, calls: int, method: str) -> tuple[difflab.Run, float]:
    """The finished student in `folder`, or a new one; and the seconds its distill call took."""
    try:
        run = difflab.load(folder)
        if run.step == run.config.steps and (folder / SECONDS).exists():
            return run, json.loads((folder / SECONDS).read_text())["seconds"]
    except UserError:
        pass
    start = time.perf_counter()
    run = teacher.distill(folder, steps=calls, method=method, progress=False)
    seconds = time.perf_counter() - start
    (folder / SECONDS).write_text(json.dumps({"seconds": seconds}))
    return run, seconds


#: The conditional teachers of class_fidelity.py, by the folder pattern it keeps them in.
GUIDED = {
    "circles_vs_moons": "circles_vs_moons-seed{}",
    "checkerboard": "checkerboard-seed{}",
    "5-D mixture": "5D-seed{}",
}


def guided(args: argparse.Namespace) -> None:
    print(f"\n{pin_threads(1)}; seeds {args.seeds}; {args.n} samples per class and draw, {args.draws} draws")
    print("\n| set | w | run | calls | ratio | precision | recall |\n|---|---|---|---|---|---|---|")
    measure = {"n": args.n, "draws": args.draws, "progress": False, "save": False}
    for name, pattern in GUIDED.items():
        teachers = [difflab.load(args.guided / pattern.format(s)) for s in args.seeds]
        students = [
            student(t, args.keep / "guided" / pattern.format(s), 4, "trajectory")[0]
            for s, t in zip(args.seeds, teachers, strict=True)
        ]
        for w in args.weights:
            for label, runs in (("teacher", teachers), ("student", students)):
                evs = [
                    run.evaluate(label=k, guidance=w, **measure)
                    for run in runs
                    for k in range(len(run.class_names or []))
                ]
                row = {key: pooled([ev[key] for ev in evs]) for key in ("ratio", "precision", "recall")}
                calls = runs[0].resolve(guidance=w).steps
                print(
                    f"| {name} | {w:g} | {label} | {calls} | {cell(row['ratio'])} | {cell(row['precision'], 3)} "
                    f"| {cell(row['recall'], 3)} |",
                    flush=True,
                )


def images(args: argparse.Namespace) -> None:
    from mnist5k import CONFIG as MNIST_CONFIG

    print(f"\n{pin_threads(1)}; mnist5k, seed 0, {args.per_class} samples per class × 2 draws")
    print("\n| run | calls | conditional accuracy | Fréchet ratio | distill s | teacher s |\n|---|---|---|---|---|---|")
    teacher = trained("mnist5k", args.teachers / "mnist5k", "v", **{**MNIST_CONFIG, "target": "v", "threads": 1})
    teacher_s = teacher.metrics[-1]["elapsed"]
    measure = {"n": args.per_class, "draws": 2, "progress": False, "save": False}  # images: n per class
    rows = [("teacher, default", teacher, None)]
    for k in args.calls:
        run, seconds = student(teacher, args.keep / f"trajectory-k{k}-s0" / "mnist5k", k, "trajectory")
        rows.append(("trajectory student", run, seconds))
    for label, run, seconds in rows:
        ev = run.evaluate(**measure)
        took = "" if seconds is None else f"{seconds:.0f}"
        print(
            f"| {label} ({ev.sampling['sampler']}) | {run.resolve().steps} | {cell(ev['accuracy'], 3)} "
            f"| {cell(ev['frechet_ratio'])} | {took} | {teacher_s:.0f} |",
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keep", type=Path, default=Path("runs/distill"), help="keep (and reuse) the students here")
    p.add_argument("--teachers", type=Path, default=Path("runs/flow"), help="keep (and reuse) the teachers here")
    p.add_argument("--data", type=Path, default=Path("runs/fewstep/data"), help="where the CSV sets are (or go)")
    p.add_argument("--sets", nargs="+", default=SETS)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--calls", nargs="+", type=int, default=[1, 2, 4])
    p.add_argument("--methods", nargs="+", default=["trajectory", "reflow", "consistency"])
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--draws", type=int, default=5)
    p.add_argument("--guided", type=Path, help="class_fidelity.py's --keep folder: measure guided students instead")
    p.add_argument("--weights", nargs="+", type=float, default=[1.0, 2.0], help="guidance weights of --guided")
    p.add_argument("--images", action="store_true", help="mnist5k's v teacher and its students instead")
    p.add_argument("--per-class", type=int, default=20, help="samples per class and draw of --images")
    args = p.parse_args()
    start = time.perf_counter()
    if args.guided or args.images:
        guided(args) if args.guided else images(args)
        print(f"\ntotal {time.perf_counter() - start:.0f}s")
        return
    folder = args.data
    write_custom_sets(folder)
    print(f"\n{pin_threads(1)}; seeds {args.seeds}; n = {args.n}, {args.draws} draws per run")
    print("\n| set | run | calls | ratio | precision | floor | recall | × full | distill s | teacher s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    measure = {"n": args.n, "draws": args.draws, "progress": False, "save": False}
    for name in args.sets:
        data = str(folder / name) if name.endswith(".csv") else name
        set_name = name.removesuffix(".csv")
        teachers = {s: trained(data, args.teachers / f"v-s{s}", set_name, seed=s) for s in args.seeds}
        chains = {s: run.evaluate(sampler="ddpm", **measure) for s, run in teachers.items()}
        defaults = {s: run.evaluate(**measure) for s, run in teachers.items()}
        teacher_s = np.mean([run.metrics[-1]["elapsed"] for run in teachers.values()])
        full_ratio = pooled([ev["ratio"] for ev in chains.values()]).mean
        for label, evs in (("teacher, full chain", chains), ("teacher, default", defaults)):
            calls = next(iter(evs.values())).sampling["steps"]
            row = {k: pooled([ev[k] for ev in evs.values()]) for k in ("ratio", "precision", "precision_floor")}
            recall = pooled([ev["recall"] for ev in evs.values()])
            print(
                f"| {name} | {label} | {calls} | {cell(row['ratio'])} | {cell(row['precision'], 3)} "
                f"| {cell(row['precision_floor'], 3)} | {cell(recall, 3)} | {row['ratio'].mean / full_ratio:.2f} "
                f"| | {teacher_s:.0f} |",
                flush=True,
            )
        for method in args.methods:
            for k in args.calls:
                evs, seconds = [], []
                for s, teacher in teachers.items():
                    run, took = student(teacher, args.keep / f"{method}-k{k}-s{s}" / set_name, k, method)
                    evs.append(run.evaluate(**measure))
                    seconds.append(took)
                row = {key: pooled([ev[key] for ev in evs]) for key in ("ratio", "precision", "precision_floor")}
                recall = pooled([ev["recall"] for ev in evs])
                print(
                    f"| {name} | {method} | {k} | {cell(row['ratio'])} | {cell(row['precision'], 3)} "
                    f"| {cell(row['precision_floor'], 3)} | {cell(recall, 3)} | {row['ratio'].mean / full_ratio:.2f} "
                    f"| {np.mean(seconds):.0f} | {teacher_s:.0f} |",
                    flush=True,
                )
    print(f"\ntotal {time.perf_counter() - start:.0f}s")


if __name__ == "__main__":
    main()
