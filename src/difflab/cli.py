"""`difflab train | sample | evaluate | plot | animate | write | report | compare | export | datasets`.

Parsing and printing only.

Every command calls the Python API (`difflab.api`). Every user mistake (bad option, bad file, corrupt run)
ends in one line on stderr and exit code 2; heavy modules are imported only after the arguments parse, so
`--help`, usage errors and Ctrl-C during start-up are quick and clean.
"""

from __future__ import annotations

import argparse
import errno
import math
import sys
import warnings
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from difflab.cli_options import (
    EVALUATE_SIZES,
    EXIT_USER_ERROR,
    Parser,
    add_config_options,
    add_machine_options,
    add_sampling_options,
    flag,
    per_kind,
    sampling_given,
    student_steps_default,
)
from difflab.config import (
    DEFAULT_DISTILL_METHOD,
    DEFAULT_STUDENT_STEPS,
    DISTILL_OPTIONS,
    TrainConfig,
    read_config_file,
)
from difflab.defaults import ANIMATION_FRAMES
from difflab.errors import UserError, option_style, setting
from difflab.kinds import registered
from difflab.types import DistillMethod, choices
from difflab.version import __version__

EXIT_ENVIRONMENT = 1
#: OS errors that say a path the user gave cannot be used (too long, under a file, not allowed, read-only).
PATH_ERRORS = frozenset(
    {errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EACCES, errno.EPERM, errno.EROFS}
)


# --- commands ---


def cmd_train(args: argparse.Namespace) -> str:
    import difflab.api as api
    import difflab.distributed as distributed

    names = {f.name for f in fields(TrainConfig)}
    given = {k: v for k, v in vars(args).items() if k in names}
    file_values = read_config_file(Path(args.config)) if args.config else {}
    options = {**file_values, **given}
    if args.resume:
        if args.out and Path(args.out).absolute() != Path(args.resume).absolute():
            raise UserError("--resume continues RUN_DIR in place; drop --out (or give the same folder)")
        run = api.load(args.resume).train(**options)
    else:
        if not args.out:
            raise UserError("train needs --out RUN_DIR (or --resume RUN_DIR)")
        data = options.pop("data", TrainConfig.data)
        if not isinstance(data, str):  # a config file's value: the command line names data, it never holds it
            raise UserError(f"invalid {setting('data', data, quoted=True)}; expected a dataset name or a file path")
        run = api.train(data, args.out, **options)
    if distributed.rank() != 0 or run.training is None:
        return ""
    result = run.training
    world = distributed.world_size()
    rate = (result.steps - result.start_step) / max(result.seconds, 1e-9)
    procs = f" on {world} processes" if world > 1 else ""
    return (
        f"trained {run.config.data} to step {result.steps} in {result.seconds:.1f}s ({rate:.0f} steps/s{procs}); "
        f"final loss {result.final_loss:.4f}; run saved in {run.path}"
    )


def cmd_distill(args: argparse.Namespace) -> str:
    import difflab.api as api

    options = {k: v for k, v in vars(args).items() if k in DISTILL_OPTIONS}
    teacher = api.load(args.run)
    student = teacher.distill(args.out, steps=args.steps, method=args.method, train_steps=args.train_steps, **options)
    if student.training is None:
        return ""
    result = student.training
    calls = "call" if student.config.student_steps == 1 else "calls"
    return (
        f"distilled {args.run} into a {student.config.distill_method} student that samples in "
        f"{student.config.student_steps} model {calls}: step {result.steps} in {result.seconds:.1f}s; final loss "
        f"{result.final_loss:.4f}; run saved in {student.path}"
    )


def _load(args: argparse.Namespace) -> Any:
    import difflab.api as api
    from difflab.limits import check_number

    threads = check_number("threads", args.threads)
    run = api.load(args.run, device=args.device)
    run.threads = threads
    return run


def cmd_sample(args: argparse.Namespace) -> str:
    from difflab.limits import check_number, require_disk
    from difflab.outputs import prepare_output

    run = _load(args)
    kind = run.kind.defaults
    out = prepare_output(Path(args.out), kind.sample_suffixes, f"{kind.item_name} samples")
    n = check_number("n", args.n)
    require_disk(16.0 * n * math.prod(run.info.shape), out.parent, f"writing {n} {kind.item_name}")
    samples = run.sample(n, label=args.cls, seed=args.seed, **sampling_given(args))
    run.kind.write_samples(samples, out, run.info)
    shape = f"dimension {samples.shape[1]}" if samples.ndim == 2 else f"shape {tuple(samples.shape[1:])}"
    return f"wrote {len(samples)} {kind.item_name} of {shape} to {out}"


def cmd_evaluate(args: argparse.Namespace) -> str:
    run = _load(args)
    kind = run.kind.defaults
    size, _ = kind.evaluate_size
    for other in EVALUATE_SIZES:
        if other != size and getattr(args, other) is not None:
            raise UserError(f"{kind.name} runs size a draw with {flag(size)}, not {flag(other)}")
    n = getattr(args, size)
    result = run.evaluate(n=n, draws=args.draws, label=args.cls, nll=args.nll, seed=args.seed, **sampling_given(args))
    saved = f"\nwrote {run.path / 'eval.json'}" if run.path is not None else ""
    return result.summary() + saved


def cmd_plot(args: argparse.Namespace) -> str:
    run = _load(args)
    paths = run.plot(args.out, n=args.n, label=args.cls, seed=args.seed, **sampling_given(args))
    return f"wrote {', '.join(p.name for p in paths)} to {paths[0].parent}"


def cmd_animate(args: argparse.Namespace) -> str:
    run = _load(args)
    path = run.animate(args.out, n=args.n, frames=args.frames, label=args.cls, seed=args.seed, **sampling_given(args))
    return f"wrote the denoising animation to {path}"


def cmd_write(args: argparse.Namespace) -> str:
    from difflab.limits import check_number
    from difflab.outputs import prepare_output, save_png

    scale = check_number("scale", args.scale)
    run = _load(args)
    if not run.kind.defaults.writes_text:
        raise UserError("write renders characters with an image run trained with --conditional")
    out = prepare_output(Path(args.out), (".png",), "rendered texts")
    picture = run.write(args.text, seed=args.seed, **sampling_given(args))
    save_png(picture, out, scale=scale)
    return f"wrote {args.text!r} to {out}"


def cmd_report(args: argparse.Namespace) -> str:
    run = _load(args)
    return f"wrote {run.report(figures=not args.no_figures)}"


def cmd_compare(args: argparse.Namespace) -> str:
    from difflab.comparison import compare, write_html

    comparison = compare(args.runs, evaluate=args.evaluate, seed=args.seed)
    if args.html:
        return f"{comparison.table()}\nwrote {write_html(comparison, Path(args.html))}"
    return comparison.table()


def cmd_export(args: argparse.Namespace) -> str:
    import difflab.api as api

    folder = api.load(args.run).export(args.diffusers)
    return f"wrote a diffusers scheduler config and the network to {folder} (how to drive it: {folder}/README.md)"


def cmd_datasets(args: argparse.Namespace) -> str:
    from difflab.data.catalog import dataset, datasets

    if args.export:
        from difflab.checkpoint import atomic_write_text
        from difflab.limits import check_number, require_disk
        from difflab.outputs import prepare_output

        name, out = args.export
        path = prepare_output(Path(out), (".csv",), "exported datasets")
        n = check_number("n", args.n)
        require_disk(40.0 * n, path.parent, f"exporting {n} points")  # a row of two numbers is ~25 bytes of text
        data = dataset(name, n, args.seed)
        names = data.class_names
        columns = [f"x{k}" for k in range(data.x.shape[1])]
        rows = [[f"{v:.6g}" for v in row] for row in data.x]
        if data.labels is not None and names:
            columns.append("label")
            rows = [[*row, names[k]] for row, k in zip(rows, data.labels.tolist(), strict=True)]
        atomic_write_text(path, ",".join(columns) + "\n" + "".join(",".join(r) + "\n" for r in rows))
        return f"wrote {len(data.x)} points of {name} to {path}"
    table = datasets()
    width = max(map(len, table))
    return "\n".join(f"{name:<{width}}  {description}" for name, description in table.items())


def build_parser() -> argparse.ArgumentParser:
    distill_steps = per_kind(student_steps_default)
    parser = Parser(prog="difflab", description="Denoising diffusion models for point data and small images.")
    parser.add_argument("--version", action="version", version=f"difflab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("train", help="train a model and write a run directory")
    p.add_argument("--out", help="run directory to create (or to continue, if it holds this config's run)")
    p.add_argument("--config", help="TOML/YAML/JSON file of options (command line wins)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    add_config_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "distill",
        help="turn a trained run (the teacher) into a student that samples in a few model calls",
        description="The student starts as the teacher and learns to reach the teacher's samples in --steps calls. "
        "It is a run like any other: sample, evaluate, plot, animate, report and export use its --steps calls. "
        "Giving the same --out again continues an interrupted student.",
    )
    p.add_argument("run", help="the teacher's run directory (trained with target v, x0 or flow)")
    p.add_argument("--out", required=True, help="run directory of the student")
    p.add_argument("--steps", type=int, default=DEFAULT_STUDENT_STEPS, help="model calls per sample (default 4)")
    p.add_argument(
        "--method",
        choices=choices(DistillMethod),
        default=DEFAULT_DISTILL_METHOD,
        help="trajectory: each of the --steps steps lands where the teacher's trajectory is (progressive "
        "distillation's target, in one round); reflow: the teacher's noise-to-sample pairs, any number of steps; "
        f"consistency: consistency distillation (default {DEFAULT_DISTILL_METHOD}; benchmarks/RESULTS-distill.md)",
    )
    p.add_argument("--train-steps", type=int, default=None, help=f"optimizer steps (default: {distill_steps})")
    add_config_options(p, DISTILL_OPTIONS)
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser("sample", help="draw samples from a trained run (points in data units, or images)")
    p.add_argument("run", help="run directory")
    p.add_argument("--n", type=int, default=10_000, help="number of samples (default 10000)")
    p.add_argument("--out", required=True, help="output file: .npy or .csv for points, .npy or .png for images")
    add_sampling_options(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser(
        "evaluate",
        help="how close samples are to fresh data, as mean ± spread over draws; writes RUN/eval.json",
    )
    p.add_argument("run", help="run directory")
    for size, what in EVALUATE_SIZES.items():
        sized = [d for d in registered() if d.evaluate_size[0] == size]
        default = ", ".join(f"{d.name} {d.evaluate_size[1]}" for d in sized) or "none"
        p.add_argument(flag(size), type=int, default=None, help=f"{what} (default {default})")
    draws = per_kind(lambda d: d.evaluate_draws)
    p.add_argument("--draws", type=int, default=None, help=f"independent sample draws (default {draws})")
    p.add_argument(
        "--nll",
        action="store_true",
        help="instead, the variational bound in bits/dim on fresh data (uses --steps, --variance)",
    )
    add_sampling_options(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "plot",
        help="figures: data vs samples, reverse and forward process, schedule, loss; "
        "for a conditional run also guidance.png (rows: classes, columns: guidance weights)",
        description="For a conditional run, samples are split evenly over the classes, drawn with --guidance, "
        "and coloured by class; guidance.png shows each class at w = 0, 1, 2, 4, 8 and --guidance.",
    )
    p.add_argument("run", help="run directory")
    p.add_argument("--out", help="folder for the PNGs (default RUN/plots)")
    shown = per_kind(lambda d: f"{d.plot_n} {d.plot_n_means}")
    p.add_argument("--n", type=int, default=None, help=f"items drawn for the figures (default {shown})")
    add_sampling_options(p)
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser(
        "animate",
        help="GIF of the denoising process",
        description="For a conditional run, points are split evenly over the classes, drawn with --guidance, and "
        "coloured by the class they are guided to.",
    )
    p.add_argument("run", help="run directory")
    p.add_argument("--out", help="GIF path (default RUN/plots/denoising.gif)")
    p.add_argument("--n", type=int, default=None, help=f"items animated (default {per_kind(lambda d: d.animate_n)})")
    p.add_argument(
        "--frames",
        type=int,
        default=ANIMATION_FRAMES,
        help=f"frames before the final one (default {ANIMATION_FRAMES})",
    )
    add_sampling_options(p)
    p.set_defaults(func=cmd_animate)

    p = sub.add_parser("write", help="render text with a class-conditional character model")
    p.add_argument("run", help="run directory of a conditional image run")
    p.add_argument("text", help='the text, e.g. "HELLO 42"; spaces are blank cells')
    p.add_argument("--out", required=True, help="output .png")
    p.add_argument("--scale", type=int, default=3, help="pixel enlargement (default 3)")
    add_sampling_options(p, classes=False)
    p.set_defaults(func=cmd_write)

    p = sub.add_parser("report", help="write RUN/report.html: config, data, timings, loss, evaluation, figures")
    p.add_argument("run", help="run directory")
    p.add_argument("--no-figures", action="store_true", help="do not draw figures when RUN/plots has none")
    add_machine_options(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("compare", help="the options that differ between runs, next to their evaluations")
    p.add_argument("runs", nargs="+", help="run directories")
    p.add_argument("--html", metavar="OUT", help="also write the table as a page")
    p.add_argument("--evaluate", action="store_true", help="evaluate runs that have no eval.json yet")
    p.add_argument("--seed", type=int, default=0, help="seed of those evaluations (default 0)")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("export", help="write the run for diffusers: a scheduler config and the network")
    p.add_argument("run", help="run directory")
    p.add_argument("--diffusers", required=True, metavar="DIR", help="a new folder for the export")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("datasets", help="list built-in datasets, or export one to CSV")
    p.add_argument("--export", nargs=2, metavar=("NAME", "OUT_CSV"), help="write NAME's points to a CSV")
    p.add_argument("--n", type=int, default=10_000, help="points to export (default 10000)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_datasets)
    return parser


def _one_line_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    print(f"difflab: warning: {message}", file=sys.stderr)


def _run(args: argparse.Namespace) -> None:
    """Run the command; its result line goes to stdout."""
    message = args.func(args)
    if message:
        print(message)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run a command; a UserError becomes one line on stderr and exit code 2."""
    with option_style("flag"):
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    command = "difflab"
    try:
        warnings.showwarning = _one_line_warning
        args = build_parser().parse_args(argv)
        command = f"difflab {args.command}"
        _run(args)
    except UserError as e:
        print(f"{command}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"{command}: error: out of memory; use fewer samples, a smaller --chunk-size or model", file=sys.stderr)
        return EXIT_ENVIRONMENT
    except Exception as e:
        from difflab.distributed import PeerLost
        from difflab.trainer import Interrupted

        if isinstance(e, PeerLost):
            print(f"{command}: error: {e}; the last checkpoint is intact", file=sys.stderr)
            return EXIT_ENVIRONMENT
        if isinstance(e, Interrupted):
            import difflab.distributed as distributed

            if distributed.rank() == 0:
                print(f"{command}: {e}; continue with: difflab train --resume {e.where}", file=sys.stderr)
            return 128 + e.signum
        if isinstance(e, OSError):
            where = f"{e.filename}: " if e.filename else ""
            if e.errno in PATH_ERRORS:  # the path the user gave cannot be used: their input, exit 2
                print(f"{command}: error: {where}{e.strerror}; choose another path", file=sys.stderr)
                return EXIT_USER_ERROR
            print(f"{command}: error: {where}{e.strerror or e}", file=sys.stderr)
            return EXIT_ENVIRONMENT
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
