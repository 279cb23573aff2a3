"""`difflab train | sample | evaluate | plot | animate | datasets`.

Every user mistake (bad option, bad file, corrupt run) ends in one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import warnings
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, NoReturn, get_args, get_origin, get_type_hints

import numpy as np
import torch

from difflab import distributed, image_commands
from difflab.checkpoint import atomic_write_bytes
from difflab.config import OPTION_HELP, RESUMABLE_CHANGES, TrainConfig, make_config, read_config_file
from difflab.data.image_source import IMAGE_SETS, is_image_spec, load_image_set
from difflab.data.source import is_builtin, load_points
from difflab.data.toy import DATASETS, PointData
from difflab.denoiser import CLIP_KINDS
from difflab.errors import UserError
from difflab.generate import generate
from difflab.image_run import DEFAULT_IMAGE_GUIDANCE, image_training_set
from difflab.metrics import QualityReport, quality
from difflab.models.unet import param_count
from difflab.run import CONFIG, LoadedRun, load_run, read_run_config
from difflab.samplers import SAMPLERS, VARIANCE_KINDS
from difflab.schedule import Spacing, spaced_timesteps
from difflab.train import Interrupted, Trainer, point_training_set
from difflab.vlb import nll_bits_per_dim

EXIT_USER_ERROR = 2

#: Chosen from benchmarks/guidance.py (see benchmarks/RESULTS-targets.md).
DEFAULT_GUIDANCE = 3.0
POINT_SPACING: Spacing = "quadratic"
GUIDANCE_HELP = (
    "classifier-free guidance weight w in ε̃ = ε(x,∅) + w·(ε(x,c) − ε(x,∅)) (Ho & Salimans 2022, eq. 6), "
    f"used with classes: 0 = unconditional, 1 = plain conditional, >1 = more on-class but less diverse "
    f"(default {DEFAULT_GUIDANCE:g} for points, {DEFAULT_IMAGE_GUIDANCE:g} for images)"
)


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see --help)\n")


# --- train ---


def _add_config_options(p: argparse.ArgumentParser) -> None:
    """One --option per TrainConfig field; values are validated by make_config, in one place."""
    hints = get_type_hints(TrainConfig)
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        default = getattr(defaults, f.name)
        if kind is bool:
            p.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=f"{OPTION_HELP.get(f.name, '')} (default {default})".strip(),
            )
            continue
        choices = f" {{{','.join(get_args(kind))}}}" if get_origin(kind) is not None else ""
        p.add_argument(
            flag,
            dest=f.name,
            default=argparse.SUPPRESS,
            metavar=f.name.upper(),
            help=f"{choices.strip()} {OPTION_HELP.get(f.name, '')} (default {default})".strip(),
        )


def resolve_train_config(args: argparse.Namespace) -> TrainConfig:
    """Defaults < config file < command line."""
    names = {f.name for f in fields(TrainConfig)}
    given = {k: v for k, v in vars(args).items() if k in names}
    file_values = read_config_file(Path(args.config)) if args.config else {}
    return make_config({**file_values, **given})


def _train_config(args: argparse.Namespace) -> tuple[Path, TrainConfig, bool]:
    """Run directory, config and whether it continues an existing run.

    `--resume RUN` continues RUN as configured (only how-to-run options may change); `--out RUN` starts a run,
    or continues it when RUN already holds one with the same config, so rerunning a killed command resumes it.
    """
    names = {f.name for f in fields(TrainConfig)}
    given = {k: v for k, v in vars(args).items() if k in names}
    if args.resume:
        run_dir = Path(args.resume)
        stored, _ = read_run_config(run_dir)
        if set(given) - RESUMABLE_CHANGES:
            bad = ", ".join(sorted(set(given) - RESUMABLE_CHANGES))
            allowed = ", ".join("--" + k.replace("_", "-") for k in sorted(RESUMABLE_CHANGES))
            raise UserError(f"--resume continues a run as configured; only {allowed} can change (got {bad})")
        return run_dir, make_config(given, base=stored), True
    if not args.out:
        raise UserError("train needs --out RUN_DIR (or --resume RUN_DIR)")
    run_dir = Path(args.out)
    cfg = resolve_train_config(args)
    if not (run_dir / CONFIG).exists():
        return run_dir, cfg, False
    stored, _ = read_run_config(run_dir)
    differ = [k for k in sorted(names - RESUMABLE_CHANGES) if getattr(stored, k) != getattr(cfg, k)]
    if differ:
        shown = "; ".join(f"{k}: {getattr(stored, k)!r} in the run, {getattr(cfg, k)!r} now" for k in differ[:3])
        raise UserError(f"{run_dir} already holds a run with another config ({shown}); use another --out")
    return run_dir, cfg, True


def cmd_train(args: argparse.Namespace) -> None:
    run_dir, cfg, resuming = _train_config(args)
    world, device = distributed.start(cfg.device)
    try:
        if is_image_spec(cfg.data):
            data = image_training_set(load_image_set(cfg.data, "train"), cfg)
        else:
            data = point_training_set(load_points(cfg.data, cfg.n_data, cfg.seed), cfg)
        trainer = Trainer(cfg, data, run_dir, world=world, device=device)
        if world.is_main:
            print(f"{cfg.model} with {param_count(trainer.denoiser.model):,} parameters", flush=True)
        if resuming and trainer.restore() and trainer.step > cfg.steps:
            raise UserError(f"{run_dir} is already at step {trainer.step}, past --steps {cfg.steps}")
        start_step = trainer.step
        result = trainer.fit()
        distributed.finish(world)
    finally:
        distributed.stop(world)
    if world.is_main:
        rate = (result.steps - start_step) / max(result.seconds, 1e-9)
        procs = f" on {world.size} processes" if world.distributed else ""
        print(
            f"trained {cfg.data} to step {result.steps} in {result.seconds:.1f}s ({rate:.0f} steps/s{procs}); "
            f"final loss {result.final_loss:.4f}; run saved in {run_dir}"
        )


# --- sampling helpers shared by sample / evaluate / plot / animate ---


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def parse_class(run: LoadedRun, label: str | None) -> int | None:
    """A class given by name (or by index 0..K-1 when no name is an integer) → index.

    With integer class names (a CSV `label` column of 3, 5, 7) an index would be ambiguous, so only
    the names are accepted there. A clear error lists the valid classes.
    """
    if label is None:
        return None
    names = run.info.class_names or []
    if not run.cfg.conditional:
        raise UserError("this run was trained without classes (train with --conditional); drop --class")
    if label in names:
        return names.index(label)
    if _is_int(label) and not any(map(_is_int, names)) and 0 <= int(label) < len(names):
        return int(label)
    raise UserError(f"unknown class {label!r}; this run knows: {', '.join(names)}")


def class_labels(run: LoadedRun, args: argparse.Namespace, n: int, *, every_class: bool = False) -> torch.Tensor | None:
    """Labels to sample: all `--class`; else, with `every_class` and a conditional run, an even split
    over the classes (0, 1, ..., K-1, 0, 1, ...); else None (unconditional)."""
    cls = parse_class(run, args.cls)
    if cls is not None:
        return torch.full((n,), cls, dtype=torch.int64)
    if every_class and run.cfg.conditional and run.info.num_classes:
        return torch.arange(n, dtype=torch.int64) % run.info.num_classes
    return None


def draw(
    run: LoadedRun,
    args: argparse.Namespace,
    n: int,
    seed: int,
    callback: Any = None,
    *,
    labels: torch.Tensor | None = None,
    guidance: float | None = None,
) -> torch.Tensor:
    """Samples in model units with the sampler/steps/clip options of `args`.

    `labels` (one per sample) are sampled with classifier-free guidance `guidance` (default
    `--guidance`); None samples unconditionally.
    """
    schedule = run.schedule
    if args.steps is not None:
        schedule = schedule.respace(spaced_timesteps(len(schedule), args.steps, args.spacing))
    weight = args.guidance if guidance is None else guidance
    options: dict[str, Any] = {}
    if args.sampler == "ddpm":
        options["variance"] = args.variance or run.cfg.sample_variance
    elif args.sampler == "ddim":
        options["eta"] = args.eta

    def bind(part: slice) -> Any:
        return run.bound(None if labels is None else labels[part], weight)

    return generate(
        bind,
        SAMPLERS[args.sampler],
        schedule,
        n,
        run.info.shape,
        seed=seed,
        chunk_size=args.chunk_size,
        callback=callback,
        **options,
    )


def _add_sampling_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sampler",
        choices=sorted(SAMPLERS),
        default=None,
        help="ddpm (ancestral), ddim, dpmpp_2m (DPM-Solver++ 2M), dpmpp_2m_sde (its stochastic form), heun (2K-1 "
        "model calls); default ddpm, images ddim",
    )
    p.add_argument("--steps", type=int, default=None, help="respace to this many steps (default: all; images: 50)")
    p.add_argument(
        "--spacing",
        choices=get_args(Spacing),
        default=None,
        help="which timesteps --steps keeps: trailing (equal strides back from T-1), linspace (an even grid from "
        "T-1 down to 0) or quadratic (denser at low noise; DDIM's); all start at T-1 (default: quadratic for "
        "points, trailing for images and learned schedules)",
    )
    p.add_argument("--eta", type=float, default=0.0, help="DDIM η: 0 deterministic, 1 ancestral-like")
    p.add_argument(
        "--variance",
        choices=VARIANCE_KINDS,
        default=None,
        help="DDPM reverse variance: small (β̃), large (β), learned (default: the run's)",
    )
    p.add_argument(
        "--class",
        dest="cls",
        default=None,
        help="class name (or index when no class name is an integer) to generate; "
        "without it a conditional run samples unconditionally",
    )
    p.add_argument("--guidance", type=float, default=None, help=GUIDANCE_HELP)
    p.add_argument(
        "--clip",
        choices=CLIP_KINDS,
        default=None,
        help="predicted-x0 clipping at each step: none, clip to the data range, or dynamic thresholding "
        "(Saharia et al. 2022) (default: the run's --clip; image runs: clip)",
    )
    p.add_argument("--chunk-size", type=int, default=10_000, help="samples per batch (bounds memory)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def _check_sampling_args(args: argparse.Namespace, schedule_len: int) -> None:
    if args.steps is not None and not 1 <= args.steps <= schedule_len:
        raise UserError(f"--steps must be between 1 and {schedule_len}, got {args.steps}")
    if args.chunk_size < 1:
        raise UserError("--chunk-size must be at least 1")


def load_sampling_run(args: argparse.Namespace) -> LoadedRun:
    """Load a run for sampling, with `--clip` overriding the clipping it was configured with."""
    run = load_run(Path(args.run))
    _check_sampling_args(args, len(run.schedule))
    if args.clip is not None:
        run.denoiser.clip = args.clip
    resolve_sampling_defaults(args, run)
    return run


def resolve_sampling_defaults(args: argparse.Namespace, run: LoadedRun) -> None:
    """Fill the options whose default depends on the kind of run: point runs sample with the full ancestral
    chain and guidance `DEFAULT_GUIDANCE`, image runs (sampler chosen in `image_commands`) with
    `DEFAULT_IMAGE_GUIDANCE`. Respaced point chains keep quadratic timesteps: with the cosine schedule it beat
    trailing for DPM-Solver++ at 10 and 20 steps on moons, circles and complex (benchmarks/RESULTS-samplers.md).
    It assumes the noise levels are spread over t as cosine spreads them: a learned (VDM) schedule on moons
    kept ᾱ > 0.97 until t = 750 of 1000, and quadratic steps gave DPM-Solver++ 20 a ratio of 20.4 against
    2.02 with trailing, so learned schedules keep trailing. Images were measured with trailing only."""
    image = image_commands.is_image_run(run)
    if args.sampler is None and not image:
        args.sampler = "ddpm"
    if args.spacing is None:
        args.spacing = POINT_SPACING if not image and run.cfg.schedule != "learned" else "trailing"
    if args.guidance is None:
        args.guidance = DEFAULT_IMAGE_GUIDANCE if image else DEFAULT_GUIDANCE


def cmd_sample(args: argparse.Namespace) -> None:
    out = Path(args.out)
    if args.n < 1:
        raise UserError("--n must be at least 1")
    run = load_sampling_run(args)
    if image_commands.is_image_run(run):
        print(image_commands.sample(run, args, parse_class(run, args.cls)))
        return
    if out.suffix not in (".npy", ".csv"):
        raise UserError(f"{out}: output must end in .npy or .csv")
    samples = run.to_data_units(draw(run, args, args.n, args.seed, labels=class_labels(run, args, args.n)))
    out.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    if out.suffix == ".npy":
        np.save(buf, samples)
    else:
        header = ",".join(f"x{k}" for k in range(samples.shape[1]))
        np.savetxt(buf, samples, delimiter=",", header=header, comments="", fmt="%.6g")
    atomic_write_bytes(out, buf.getvalue())
    print(f"wrote {args.n} samples of dimension {samples.shape[1]} to {out}")


# --- evaluate ---


#: Independent data draws averaged into the floor of `difflab evaluate` for built-in sets.
FLOOR_DRAWS = 4


def reference_data(run: LoadedRun, n: int, seed: int) -> tuple[PointData, list[PointData]]:
    """The truth and independent draws of it for the floor: fresh i.i.d. draws for built-in sets
    (`FLOOR_DRAWS` of them), the other half of a user file."""
    spec = run.cfg.data
    if is_builtin(spec):
        others = [load_points(spec, n, seed + 2_000_003 + k) for k in range(FLOOR_DRAWS)]
        return load_points(spec, n, seed + 1_000_003), others
    data = load_points(spec, 0, 0)
    order = np.random.default_rng(seed).permutation(len(data.x))
    half = min(n, len(data.x) // 2)
    return data.subset(order[:half]), [data.subset(order[half : 2 * half])]


def print_nll(run: LoadedRun, args: argparse.Namespace, truth: np.ndarray) -> None:
    """The variational bound on fresh data, in bits/dim of the normalized data."""
    if run.cfg.conditional:
        raise UserError("--nll is defined for unconditional runs")
    schedule = run.schedule
    if args.steps is not None:
        schedule = schedule.respace(spaced_timesteps(len(schedule), args.steps, args.spacing))
    variance = args.variance or run.cfg.sample_variance
    x0 = torch.as_tensor(run.info.scaler.transform(truth), dtype=torch.float32)
    generator = torch.Generator().manual_seed(args.seed)
    bpd = nll_bits_per_dim(run.bound(), schedule, x0, variance=variance, generator=generator)
    print(
        f"NLL bound {bpd.total:.4f} bits/dim  (prior {bpd.prior:.4f}, diffusion {bpd.diffusion:.4f}, decoder "
        f"{bpd.decoder:.4f}; variance {variance}, steps {len(schedule)}, n={len(truth)}, normalized units)"
    )


def evaluate(args: argparse.Namespace, run: LoadedRun | None = None) -> tuple[QualityReport, int, int]:
    """Energy distance of fresh samples to fresh data with its floor, points per set, and sampling steps.

    The benchmarks call this too, so their tables measure exactly what `difflab evaluate` prints.
    `run` avoids loading the weights again when the caller already has them.
    """
    if args.n < 2:
        raise UserError("--n must be at least 2")
    if run is None:
        run = load_sampling_run(args)
    else:
        resolve_sampling_defaults(args, run)
    truth_data, others = reference_data(run, args.n, args.seed)
    truth = truth_data.x
    samples = run.to_data_units(draw(run, args, len(truth), args.seed, labels=class_labels(run, args, len(truth))))
    report = quality(torch.as_tensor(samples), torch.as_tensor(truth), *(torch.as_tensor(d.x) for d in others))
    return report, len(truth), args.steps or len(run.schedule)


def cmd_evaluate(args: argparse.Namespace) -> None:
    run = load_sampling_run(args)
    if image_commands.is_image_run(run):
        if args.per_class < 2:
            raise UserError("--per-class must be at least 2")
        print(image_commands.evaluate(run, args))
        return
    if args.nll:
        if args.n < 2:
            raise UserError("--n must be at least 2")
        print_nll(run, args, reference_data(run, args.n, args.seed)[0].x)
        return
    report, n, steps = evaluate(args, run)
    print(
        f"energy distance {report.distance:.5f}  floor {report.floor:.5f}  ratio {report.ratio:.2f}  "
        f"(n={n}, standardized, sampler {args.sampler}, steps {steps})"
    )


# --- plot / animate ---


def record_trajectory(
    run: LoadedRun, args: argparse.Namespace, n: int, keep: int, labels: torch.Tensor | None
) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    """Samples plus `keep` evenly spaced intermediate states (model timestep, x in data units)."""
    states: list[tuple[int, np.ndarray]] = []
    total = args.steps or len(run.schedule)
    wanted = set(np.linspace(0, total - 1, keep).round().astype(int).tolist())

    def callback(step: dict[str, Any]) -> None:
        if step["i"] in wanted:
            states.append((step["t"], run.to_data_units(step["x"])))

    final = run.to_data_units(draw(run, args, n, args.seed, callback=callback, labels=labels))
    return final, states


def guidance_weights(default: float) -> list[float]:
    """Columns of the guidance grid: unconditional, conditional, stronger, and the chosen weight."""
    return sorted({0.0, 1.0, 2.0, 4.0, 8.0, float(default)})


def cmd_plot(args: argparse.Namespace) -> None:
    from difflab import plots
    from difflab.process import q_sample

    run = load_sampling_run(args)
    out = Path(args.out) if args.out else Path(args.run) / "plots"
    out.mkdir(parents=True, exist_ok=True)
    if image_commands.is_image_run(run):
        print(image_commands.plot(run, args, out))
        return
    truth, _ = reference_data(run, args.n, args.seed)
    names = run.info.class_names if run.cfg.conditional else None
    data_labels = truth.labels if names else None
    labels = class_labels(run, args, args.n, every_class=True)
    sample_labels = None if labels is None else labels.numpy()
    final, states = record_trajectory(run, args, args.n, keep=6, labels=labels)
    plots.plot_comparison(
        truth.x, final, out / "samples.png", data_labels=data_labels, sample_labels=sample_labels, class_names=names
    )
    snapshots = [(f"t={t}", x) for t, x in states] + [("generated", final)]
    plots.plot_snapshots(snapshots, out / "reverse.png", labels=sample_labels)
    x0 = torch.as_tensor(run.info.scaler.transform(truth.x), dtype=torch.float32)
    gen = torch.Generator().manual_seed(args.seed)
    forward = []
    for t in np.linspace(0, len(run.schedule) - 1, 6).round().astype(int):
        i = torch.full((len(x0),), int(t), dtype=torch.int64)
        xt = q_sample(run.schedule, x0, i, torch.randn(x0.shape, generator=gen))
        forward.append((f"t={t}", run.to_data_units(xt)))
    plots.plot_snapshots([("data", truth.x), *forward], out / "forward.png", labels=data_labels)
    plots.plot_schedule(run.schedule, out / "schedule.png", f"{run.cfg.schedule}, T={run.cfg.timesteps}")
    written = ["samples.png", "reverse.png", "forward.png", "schedule.png"]
    metrics = Path(args.run) / "metrics.jsonl"
    if metrics.exists():
        rows = [json.loads(line) for line in metrics.read_text().splitlines() if line]
        if rows:
            plots.plot_loss([r["step"] for r in rows], [r["loss"] for r in rows], out / "loss.png")
            written.append("loss.png")
    if names:
        per_cell = max(args.n // len(names), 1)
        grid_labels = torch.arange(len(names)).repeat_interleave(per_cell)
        weights = guidance_weights(args.guidance)
        columns = [
            run.to_data_units(draw(run, args, len(grid_labels), args.seed, labels=grid_labels, guidance=w))
            for w in weights
        ]
        cells = [[col[grid_labels.numpy() == k] for col in columns] for k in range(len(names))]
        plots.plot_guidance_grid(cells, names, weights, out / "guidance.png", background=truth.x)
        written.append("guidance.png")
    print(f"wrote {', '.join(written)} to {out}")


def cmd_animate(args: argparse.Namespace) -> None:
    from difflab import plots

    run = load_sampling_run(args)
    out = Path(args.out) if args.out else Path(args.run) / "plots" / "denoising.gif"
    if image_commands.is_image_run(run):
        print(image_commands.animate(run, args, out))
        return
    labels = class_labels(run, args, args.n, every_class=True)
    final, states = record_trajectory(run, args, args.n, keep=args.frames, labels=labels)
    everything = np.concatenate([final] + [x for _, x in states[-len(states) // 2 :]])
    lo, hi = np.percentile(everything, [0.5, 99.5], axis=0)
    pad = 0.1 * (hi - lo)
    dims = [0, 1] if final.shape[1] > 1 else [0, 0]
    limits = np.stack([lo[dims] - pad[dims], hi[dims] + pad[dims]], axis=1)
    frames = [(f"t = {t}", x) for t, x in states] + [("x0 (generated)", final)]
    plots.write_gif(frames, out, limits=limits, labels=None if labels is None else labels.numpy())
    print(f"wrote {len(frames)}-frame animation to {out}")


def cmd_write(args: argparse.Namespace) -> None:
    print(image_commands.write(load_sampling_run(args), args))


def cmd_datasets(args: argparse.Namespace) -> None:
    if args.export:
        name, out = args.export
        if name not in DATASETS:
            raise UserError(f"unknown dataset {name!r}; built-in: {', '.join(DATASETS)}")
        data = load_points(name, args.n, args.seed)
        header = ",".join(f"x{k}" for k in range(data.x.shape[1]))
        cols = data.x
        if data.labels is not None:
            header += ",label"
            cols = np.concatenate([data.x, data.labels[:, None]], axis=1)
        np.savetxt(out, cols, delimiter=",", header=header, comments="", fmt="%.6g")
        print(f"wrote {args.n} points of {name} to {out}")
        return
    width = max(map(len, [*DATASETS, *IMAGE_SETS]))
    for name, (_, description) in DATASETS.items():
        print(f"{name:<{width}}  {description}")
    for name, description in IMAGE_SETS.items():
        print(f"{name:<{width}}  {description}")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="difflab", description="Denoising diffusion models for point data and small images.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    p = sub.add_parser("train", help="train a model and write a run directory")
    p.add_argument("--out", help="run directory to create (or to continue, if it holds this config's run)")
    p.add_argument("--config", help="TOML/YAML/JSON file of options (command line wins)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    _add_config_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="draw samples from a trained run, in data units")
    p.add_argument("run", help="run directory")
    p.add_argument("--n", type=int, default=10_000, help="number of samples (default 10000)")
    p.add_argument("--out", required=True, help="output file, .npy or .csv")
    _add_sampling_options(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("evaluate", help="energy distance of fresh samples to fresh data, with its floor")
    p.add_argument("run", help="run directory")
    p.add_argument("--n", type=int, default=5000, help="points per set (default 5000)")
    p.add_argument("--per-class", type=int, default=50, help="image runs: samples per class (default 50)")
    p.add_argument(
        "--nll",
        action="store_true",
        help="instead, the variational bound in bits/dim on fresh data (uses --steps, --variance)",
    )
    _add_sampling_options(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "plot",
        help="figures: data vs samples, reverse and forward process, schedule, loss; "
        "for a conditional run also guidance.png (rows: classes, columns: guidance weights)",
        description="For a conditional run without --class, samples are split evenly over the classes, "
        "drawn with --guidance, and coloured by class; guidance.png shows each class at w = 0, 1, 2, 4, 8 "
        "and --guidance.",
    )
    p.add_argument("run", help="run directory")
    p.add_argument("--out", help="folder for the PNGs (default RUN/plots)")
    p.add_argument("--n", type=int, default=3000, help="points per panel (default 3000)")
    _add_sampling_options(p)
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser(
        "animate",
        help="GIF of the denoising process",
        description="For a conditional run without --class, points are split evenly over the classes, drawn "
        "with --guidance, and coloured by the class they are guided to.",
    )
    p.add_argument("run", help="run directory")
    p.add_argument("--out", help="GIF path (default RUN/plots/denoising.gif)")
    p.add_argument("--n", type=int, default=2000, help="points (default 2000)")
    p.add_argument("--frames", type=int, default=40, help="frames before the final one (default 40)")
    _add_sampling_options(p)
    p.set_defaults(func=cmd_animate)

    p = sub.add_parser("write", help="render text with a class-conditional character model")
    p.add_argument("run", help="run directory of a conditional image run")
    p.add_argument("text", help='the text, e.g. "HELLO 42"; spaces are blank cells')
    p.add_argument("--out", required=True, help="output .png")
    p.add_argument("--scale", type=int, default=3, help="pixel enlargement (default 3)")
    _add_sampling_options(p)
    p.set_defaults(func=cmd_write)

    p = sub.add_parser("datasets", help="list built-in datasets, or export one to CSV")
    p.add_argument("--export", nargs=2, metavar=("NAME", "OUT_CSV"), help="write NAME's points to a CSV")
    p.add_argument("--n", type=int, default=10_000, help="points to export (default 10000)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_datasets)
    return parser


def _one_line_warning(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
    print(f"difflab: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run a command; a UserError becomes one line on stderr and exit code 2."""
    warnings.showwarning = _one_line_warning
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except UserError as e:
        print(f"difflab {args.command}: error: {e}", file=sys.stderr)
        return EXIT_USER_ERROR
    except Interrupted as e:
        if distributed.rank() == 0:
            print(f"difflab {args.command}: {e}; continue with: difflab train --resume {e.run_dir}", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        print(f"difflab {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
