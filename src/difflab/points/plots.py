"""Figures for point data (matplotlib, headless): comparisons, process snapshots, curves, GIFs."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from PIL import Image

from difflab.checkpoint import atomic_write_bytes
from difflab.schedule import Schedule

POINT_SIZE = 2.0


def save_figure(fig: Figure, path: Path, **kwargs: object) -> None:
    """Render a figure to bytes and write it atomically (so a crash never leaves half a PNG)."""
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip(".") or "png", dpi=110, bbox_inches="tight", **kwargs)
    atomic_write_bytes(path, buf.getvalue())


def _pairs(dim: int) -> list[tuple[int, int]]:
    """Column pairs to show: (0, 1) for 2-D, consecutive pairs (0,1), (2,3), ... for more."""
    if dim == 1:
        return [(0, 0)]
    return [(k, k + 1) for k in range(0, dim - 1, 2)] + ([(dim - 2, dim - 1)] if dim % 2 else [])


def class_colours(labels: np.ndarray) -> np.ndarray:
    """RGBA per point: class k always gets tab10 colour k (mod 10), whichever classes are present."""
    return matplotlib.colormaps["tab10"](np.asarray(labels, dtype=np.int64) % 10)


def _scatter(ax: Axes, x: np.ndarray, pair: tuple[int, int], labels: np.ndarray | None, title: str) -> None:
    i, j = pair
    if i == j:
        ax.hist(x[:, i], bins=80, color="tab:blue", alpha=0.8)
    else:
        colour = class_colours(labels) if labels is not None else "tab:blue"
        ax.scatter(x[:, i], x[:, j], s=POINT_SIZE, alpha=0.6, linewidths=0, c=colour)
        ax.set_xlabel(f"x{i}")
        ax.set_ylabel(f"x{j}")
    ax.set_title(title)


def _class_legend(fig: Figure, class_names: Sequence[str]) -> None:
    handles = [
        Line2D([], [], marker="o", linestyle="", color=class_colours(np.array([k]))[0], label=name)
        for k, name in enumerate(class_names)
    ]
    fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 8), bbox_to_anchor=(0.5, 1.04))


def plot_comparison(
    data: np.ndarray,
    samples: np.ndarray,
    path: Path,
    *,
    data_labels: np.ndarray | None = None,
    sample_labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
) -> None:
    """Data vs generated side by side, in data units; one row of panels per column pair when D > 2.

    Points with labels are coloured by class (generated ones by the class they were guided to).
    """
    pairs = _pairs(data.shape[1])
    fig = Figure(figsize=(9, 4.2 * len(pairs)), layout="constrained")
    axes = fig.subplots(len(pairs), 2, squeeze=False)
    for row, pair in enumerate(pairs):
        _scatter(axes[row, 0], data, pair, data_labels, "data")
        _scatter(axes[row, 1], samples, pair, sample_labels, "generated")
        lims = [axes[row, 0].get_xlim(), axes[row, 0].get_ylim()]
        axes[row, 1].set_xlim(lims[0])
        axes[row, 1].set_ylim(lims[1])
    if class_names:
        _class_legend(fig, class_names)
    save_figure(fig, path)


def plot_snapshots(
    snapshots: Sequence[tuple[str, np.ndarray]], path: Path, *, labels: np.ndarray | None = None
) -> None:
    """A strip of scatter plots (first two columns), one per titled state; `labels` colour every state's points."""
    fig = Figure(figsize=(2.6 * len(snapshots), 2.8))
    axes = fig.subplots(1, len(snapshots), squeeze=False)
    for ax, (title, x) in zip(axes[0], snapshots, strict=True):
        _scatter(ax, x, _pairs(x.shape[1])[0], labels, title)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("")
        ax.set_ylabel("")
    save_figure(fig, path)


def plot_loss(steps: Sequence[int], losses: Sequence[float], path: Path) -> None:
    """Training loss against step (log scale)."""
    fig = Figure(figsize=(6, 3.5))
    ax = fig.subplots()
    ax.plot(steps, losses)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def plot_schedule(schedule: Schedule, path: Path, name: str = "") -> None:
    """ᾱ_t, log SNR_t and the posterior variance β̃_t against t."""
    t = schedule.timesteps.numpy()
    fig = Figure(figsize=(12, 3.2))
    axes = fig.subplots(1, 3)
    axes[0].plot(t, schedule.alphas_cumprod.numpy())
    axes[0].set_title(f"ᾱ_t (ᾱ_T-1 = {schedule.terminal_alpha_bar:.3g})")
    axes[1].plot(t, schedule.log_snr.numpy())
    axes[1].set_title("log SNR_t")
    axes[2].plot(t[1:], schedule.posterior_variance.numpy()[1:], label="β̃_t (small)")
    axes[2].plot(t, schedule.betas.numpy(), label="β_t (large)", alpha=0.7)
    axes[2].set_yscale("log")
    axes[2].legend()
    axes[2].set_title("reverse-step variance")
    for ax in axes:
        ax.set_xlabel("t")
        ax.grid(alpha=0.3)
    if name:
        fig.suptitle(name)
    save_figure(fig, path)


def plot_guidance_grid(
    cells: Sequence[Sequence[np.ndarray]],
    class_names: Sequence[str],
    weights: Sequence[float],
    path: Path,
    *,
    background: np.ndarray | None = None,
) -> None:
    """Samples per class (rows) and guidance weight (columns), over the data in grey (first two columns)."""
    rows, cols = len(class_names), len(weights)
    fig = Figure(figsize=(2.2 * cols, 2.2 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    j = 1 if cells[0][0].shape[1] > 1 else 0
    for k, name in enumerate(class_names):
        for c, w in enumerate(weights):
            ax = axes[k, c]
            if background is not None:
                ax.scatter(background[:, 0], background[:, j], s=1.0, c="0.85", linewidths=0)
            x = cells[k][c]
            ax.scatter(x[:, 0], x[:, j], s=POINT_SIZE, alpha=0.6, linewidths=0, c=class_colours(np.full(len(x), k)))
            ax.set_xticks([])
            ax.set_yticks([])
            if k == 0:
                ax.set_title(f"w = {w:g}")
            if c == 0:
                ax.set_ylabel(name)
    fig.suptitle("classifier-free guidance: ε(x,∅) + w·(ε(x,c) − ε(x,∅))")
    save_figure(fig, path)


def write_gif(
    frames: Sequence[tuple[str, np.ndarray]],
    path: Path,
    *,
    limits: np.ndarray,
    labels: np.ndarray | None = None,
    ms_per_frame: int = 80,
) -> None:
    """An animated GIF of point clouds (first two columns), fixed axes, last frame held longer.

    `labels` colour each point by class in every frame (points keep their identity along the chain).
    """
    colour = class_colours(labels) if labels is not None else "tab:blue"
    images = []
    for title, x in frames:
        fig = Figure(figsize=(4, 4))
        ax = fig.subplots()
        ax.scatter(x[:, 0], x[:, 1 if x.shape[1] > 1 else 0], s=POINT_SIZE, alpha=0.6, linewidths=0, c=colour)
        ax.set_xlim(limits[0])
        ax.set_ylim(limits[1])
        ax.set_title(title)
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        images.append(Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3]))
    buf = io.BytesIO()
    durations = [ms_per_frame] * (len(images) - 1) + [1500]
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    atomic_write_bytes(path, buf.getvalue())
