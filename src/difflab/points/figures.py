"""The figures of a point run: data vs samples, the reverse and forward process, schedule, loss, guidance, GIF."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

import difflab.frames as frames
from difflab.data.source import data_title, load_points
from difflab.errors import UserError
from difflab.limits import check_number
from difflab.outputs import prepare_folder, prepare_output
from difflab.points import plots
from difflab.points.defaults import POINTS
from difflab.process import q_sample

if TYPE_CHECKING:
    from difflab.kind import RunView
    from difflab.sampling import Sampling

PROCESS_COLUMNS = 6


def data_for_figures(run: RunView, n: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Points of the data (data units) and their labels: a fresh draw of a built-in set, else the run's copy."""
    spec = run.source.spec
    data = load_points(spec, n, seed + 1_000_003) if run.kind.is_builtin(spec) else run.kind.from_copy(run.data_copy())
    if len(data.x) > n:
        keep = np.random.default_rng(seed).choice(len(data.x), n, replace=False)
        data = data.subset(np.sort(keep))
    return data.x, data.labels


def caption(run: RunView, sampling: Sampling, label: int | str | None = None) -> str:
    """What made a figure: data, sampler, steps, guidance, class."""
    conditional = bool(run.class_names)
    text = f"{data_title(run.config.data)}: {sampling.describe(conditional)}"
    if label is not None:
        text += f", class {run.class_names[run.class_index(label)] if run.class_names else label}"
    return text


def record(
    run: RunView, sampling: Sampling, n: int, count: int, labels: torch.Tensor | None, seed: int, progress: bool | None
) -> tuple[np.ndarray, list[tuple[int, np.ndarray, np.ndarray]]]:
    """Samples, and (t, x_t, x̂0) in data units at up to `count` steps chosen evenly in log SNR."""
    schedule = sampling.schedule(run.model)
    wanted = set(frames.by_log_snr(schedule, count))
    states: list[tuple[int, np.ndarray, np.ndarray]] = []

    def keep(state: dict[str, Any]) -> None:
        if state["i"] in wanted:
            states.append((state["t"], run.model.to_data_units(state["x"]), run.model.to_data_units(state["x0"])))

    one_chunk = replace(sampling, chunk_size=max(n, sampling.chunk_size))
    final = run.model.to_data_units(run.draw(n, one_chunk, labels=labels, seed=seed, callback=keep, progress=progress))
    return final, states


def guidance_weights(default: float) -> list[float]:
    """Columns of the guidance grid: unconditional, conditional, stronger, and the chosen weight."""
    return sorted({0.0, 1.0, 2.0, 4.0, 8.0, float(default)})


def plot(
    run: RunView,
    folder: Path,
    sampling: Sampling,
    *,
    n: int | None,
    label: int | str | None,
    seed: int,
    progress: bool | None,
) -> list[Path]:
    """samples.png, reverse.png, forward.png, schedule.png, loss.png (if logged), guidance.png (conditional),
    progress.png/.gif (runs trained with sample_every)."""
    n = check_number("n", POINTS.plot_n if n is None else n)
    prepare_folder(folder)
    truth, truth_labels = data_for_figures(run, n, seed)
    names = run.class_names
    data_labels = truth_labels if names else None
    labels = run.labels_for(n, label, every_class=True)
    sample_labels = None if labels is None else labels.numpy()
    text = caption(run, sampling, label)
    final, states = record(run, sampling, n, PROCESS_COLUMNS, labels, seed, progress)
    written = [folder / "samples.png", folder / "reverse.png", folder / "forward.png", folder / "schedule.png"]
    plots.plot_comparison(
        truth,
        final,
        written[0],
        caption=text,
        data_labels=data_labels,
        sample_labels=sample_labels,
        class_names=names,
        axis_names=run.info.columns,
    )
    log_snr = run.model.schedule.log_snr
    columns: list[tuple[str, np.ndarray, np.ndarray | None]] = [
        (f"t = {t}, log SNR {float(log_snr[t]):.1f}", x, x0) for t, x, x0 in states
    ]
    columns.append(("generated", final, None))
    plots.plot_process(columns, written[1], caption=f"reverse process; {text}", labels=sample_labels, class_names=names)
    plot_forward(run, truth, data_labels, written[2], seed)
    plots.plot_schedule(run.model.schedule, written[3], f"{run.config.schedule}, T = {run.config.timesteps}")
    try:
        rows = run.metrics
    except UserError as e:  # a damaged log costs the loss figure, not the others
        warnings.warn(f"{e}; loss.png skipped", stacklevel=2)
        rows = []
    if rows:
        written.append(folder / "loss.png")
        loss_caption = (
            f"training loss ({run.config.target} target, {run.config.weighting} weighting, {run.config.loss})"
        )
        plots.plot_loss([r["step"] for r in rows], [r["loss"] for r in rows], written[-1], caption=loss_caption)
    if names:
        written.append(plot_guidance(run, sampling, n, seed, truth, folder / "guidance.png", progress))
    return written + write_progress(run.snapshots(), folder)


def plot_forward(run: RunView, truth: np.ndarray, labels: np.ndarray | None, path: Path, seed: int) -> None:
    """The data noised in one step by q(x_t | x_0) at t chosen evenly in log SNR (t = 0 adds almost nothing)."""
    schedule = run.model.schedule
    x0 = torch.as_tensor(run.info.scaler.transform(truth), dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(x0.shape, generator=gen)
    panels = [("data", truth)]
    for t in reversed(frames.by_log_snr(schedule, 6)):
        i = torch.full((len(x0),), t, dtype=torch.int64)
        xt = q_sample(schedule, x0, i, noise)
        panels.append((f"t = {t}, log SNR {float(schedule.log_snr[t]):.1f}", run.model.to_data_units(xt)))
    title = f"forward process q(x_t | x_0) in one step, one noise draw; {run.config.schedule}, T = {len(schedule)}"
    plots.plot_snapshots(panels, path, title=title, labels=labels)


def plot_guidance(
    run: RunView, sampling: Sampling, n: int, seed: int, truth: np.ndarray, path: Path, progress: bool | None
) -> Path:
    """guidance.png: each class (rows) at guidance 0, 1, 2, 4, 8 and the run's weight (columns)."""
    names = run.class_names or []
    per_cell = max(n // len(names), 1)
    grid_labels = torch.arange(len(names)).repeat_interleave(per_cell)
    weights = guidance_weights(sampling.guidance)
    columns = []
    for w in weights:
        x = run.draw(len(grid_labels), replace(sampling, guidance=w), labels=grid_labels, seed=seed, progress=progress)
        columns.append(run.model.to_data_units(x))
    cells = [[col[grid_labels.numpy() == k] for col in columns] for k in range(len(names))]
    text = f"{data_title(run.config.data)}: {replace(sampling, guidance=0.0).describe()}"
    plots.plot_guidance_grid(cells, names, weights, path, caption=text, background=truth)
    return path


def animate(
    run: RunView,
    path: Path,
    sampling: Sampling,
    *,
    n: int | None,
    frames: int,
    label: int | str | None,
    seed: int,
    progress: bool | None,
) -> Path:
    """A GIF of the denoising process, frames evenly in log SNR, coloured by class for a conditional run."""
    n = check_number("n", POINTS.animate_n if n is None else n)
    frames = check_number("frames", frames)
    prepare_output(path, (".gif",), "animations")
    labels = run.labels_for(n, label, every_class=True)
    final, states = record(run, sampling, n, frames, labels, seed, progress)
    everything = np.concatenate([final] + [x for _, x, _ in states[-len(states) // 2 :]])
    lo, hi = np.percentile(everything, [0.5, 99.5], axis=0)
    pad = 0.1 * (hi - lo)
    dims = [0, 1] if final.shape[1] > 1 else [0, 0]
    limits = np.stack([lo[dims] - pad[dims], hi[dims] + pad[dims]], axis=1)
    log_snr = run.model.schedule.log_snr
    shown = [(f"t = {t}, log SNR {float(log_snr[t]):.1f}", x) for t, x, _ in states] + [("generated x0", final)]
    names = run.class_names if labels is not None else None
    plots.write_gif(
        shown,
        path,
        limits=limits,
        labels=None if labels is None else labels.numpy(),
        class_names=names,
        caption=caption(run, sampling, label),
    )
    return path


def write_progress(snapshots: list[tuple[int, np.ndarray]], folder: Path) -> list[Path]:
    """progress.png (samples at a few steps of training) and progress.gif (at every snapshot)."""
    if not snapshots:
        return []
    prepare_folder(folder)
    strip, gif = folder / "progress.png", folder / "progress.gif"
    shown = frames.strip_of(snapshots)
    plots.plot_snapshots([(f"step {s}", x) for s, x in shown], strip, title="samples during training (EMA weights)")
    last = snapshots[-1][1]
    lo, hi = np.percentile(last, [0.5, 99.5], axis=0)
    pad = 0.15 * (hi - lo)
    dims = [0, 1] if last.shape[1] > 1 else [0, 0]
    limits = np.stack([lo[dims] - pad[dims], hi[dims] + pad[dims]], axis=1)
    plots.write_gif([(f"training step {s}", x) for s, x in snapshots], gif, limits=limits)
    return [strip, gif]
