"""The figures of a point run: data vs samples, the reverse and forward process, schedule, loss, guidance, GIF."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from difflab.data.source import load_points
from difflab.errors import UserError
from difflab.limits import check_number
from difflab.outputs import prepare_folder, prepare_output
from difflab.points import plots
from difflab.process import q_sample

if TYPE_CHECKING:
    from difflab.api import Run
    from difflab.sampling import Sampling

DEFAULT_PLOT_N = 3000
DEFAULT_ANIMATE_N = 2000


def data_for_figures(run: Run, n: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Points of the data (data units) and their labels: a fresh draw of a built-in set, else the run's copy."""
    spec = run.source.spec
    data = load_points(spec, n, seed + 1_000_003) if run.kind.is_builtin(spec) else run.kind.from_copy(run.data_copy())
    if len(data.x) > n:
        keep = np.random.default_rng(seed).choice(len(data.x), n, replace=False)
        data = data.subset(np.sort(keep))
    return data.x, data.labels


def record_trajectory(
    run: Run, sampling: Sampling, n: int, keep: int, labels: torch.Tensor | None, seed: int, progress: bool | None
) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    """Samples plus `keep` evenly spaced intermediate states (model timestep, x in data units)."""
    states: list[tuple[int, np.ndarray]] = []
    total = sampling.steps
    wanted = set(np.linspace(0, total - 1, keep).round().astype(int).tolist())

    def callback(step: dict[str, Any]) -> None:
        if step["i"] in wanted:
            states.append((step["t"], run.model.to_data_units(step["x"])))

    final = run.model.to_data_units(
        run.draw(n, sampling, labels=labels, seed=seed, callback=callback, progress=progress)
    )
    return final, states


def guidance_weights(default: float) -> list[float]:
    """Columns of the guidance grid: unconditional, conditional, stronger, and the chosen weight."""
    return sorted({0.0, 1.0, 2.0, 4.0, 8.0, float(default)})


def plot(
    run: Run,
    folder: Path,
    sampling: Sampling,
    *,
    n: int | None,
    label: int | str | None,
    seed: int,
    progress: bool | None,
) -> list[Path]:
    """samples.png, reverse.png, forward.png, schedule.png, loss.png (if logged), guidance.png (conditional)."""
    n = check_number("n", DEFAULT_PLOT_N if n is None else n)
    prepare_folder(folder)
    truth, truth_labels = data_for_figures(run, n, seed)
    names = run.class_names
    data_labels = truth_labels if names else None
    labels = run.labels_for(n, label, every_class=True)
    sample_labels = None if labels is None else labels.numpy()
    final, states = record_trajectory(run, sampling, n, 6, labels, seed, progress)
    written = [folder / "samples.png", folder / "reverse.png", folder / "forward.png", folder / "schedule.png"]
    plots.plot_comparison(
        truth, final, written[0], data_labels=data_labels, sample_labels=sample_labels, class_names=names
    )
    snapshots = [(f"t={t}", x) for t, x in states] + [("generated", final)]
    plots.plot_snapshots(snapshots, written[1], labels=sample_labels)
    x0 = torch.as_tensor(run.info.scaler.transform(truth), dtype=torch.float32)
    gen = torch.Generator().manual_seed(seed)
    schedule = run.model.schedule
    forward = []
    for t in np.linspace(0, len(schedule) - 1, 6).round().astype(int):
        i = torch.full((len(x0),), int(t), dtype=torch.int64)
        xt = q_sample(schedule, x0, i, torch.randn(x0.shape, generator=gen))
        forward.append((f"t={t}", run.model.to_data_units(xt)))
    plots.plot_snapshots([("data", truth), *forward], written[2], labels=data_labels)
    plots.plot_schedule(schedule, written[3], f"{run.config.schedule}, T={run.config.timesteps}")
    try:
        rows = run.metrics
    except UserError as e:  # a damaged log costs the loss figure, not the others
        warnings.warn(f"{e}; loss.png skipped", stacklevel=2)
        rows = []
    if rows:
        written.append(folder / "loss.png")
        plots.plot_loss([r["step"] for r in rows], [r["loss"] for r in rows], written[-1])
    if names:
        per_cell = max(n // len(names), 1)
        grid_labels = torch.arange(len(names)).repeat_interleave(per_cell)
        weights = guidance_weights(sampling.guidance)
        columns = []
        for w in weights:
            x = run.draw(
                len(grid_labels), replace(sampling, guidance=w), labels=grid_labels, seed=seed, progress=progress
            )
            columns.append(run.model.to_data_units(x))
        cells = [[col[grid_labels.numpy() == k] for col in columns] for k in range(len(names))]
        written.append(folder / "guidance.png")
        plots.plot_guidance_grid(cells, names, weights, written[-1], background=truth)
    return written


def animate(
    run: Run,
    path: Path,
    sampling: Sampling,
    *,
    n: int | None,
    frames: int,
    label: int | str | None,
    seed: int,
    progress: bool | None,
) -> Path:
    """A GIF of the denoising process, coloured by class for a conditional run."""
    n = check_number("n", DEFAULT_ANIMATE_N if n is None else n)
    frames = check_number("frames", frames)
    prepare_output(path, (".gif",), "animations")
    labels = run.labels_for(n, label, every_class=True)
    final, states = record_trajectory(run, sampling, n, frames, labels, seed, progress)
    if not states:
        raise UserError("no intermediate states were recorded")
    everything = np.concatenate([final] + [x for _, x in states[-len(states) // 2 :]])
    lo, hi = np.percentile(everything, [0.5, 99.5], axis=0)
    pad = 0.1 * (hi - lo)
    dims = [0, 1] if final.shape[1] > 1 else [0, 0]
    limits = np.stack([lo[dims] - pad[dims], hi[dims] + pad[dims]], axis=1)
    shown = [(f"t = {t}", x) for t, x in states] + [("x0 (generated)", final)]
    plots.write_gif(shown, path, limits=limits, labels=None if labels is None else labels.numpy())
    return path
