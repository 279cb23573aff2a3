"""Figures for point data, drawn with matplotlib's object API (no pyplot, so no backend is chosen on import).

Every figure says what made it (a caption with the sampler, steps and guidance), points keep equal axes where
the two columns share a scale (a circle is drawn as a circle; columns of very different spans, such as metres
against kilograms, each fill their axis), axes carry the data's own column names, and class-coloured points
come with a legend.
"""

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
#: One colour per class (tab10), the same class always the same colour.
CLASS_MAP = "tab10"


def save_figure(fig: Figure, path: Path) -> None:
    """Render a figure to bytes and write it atomically (so a crash never leaves half a PNG)."""
    buf = io.BytesIO()
    fig.savefig(buf, format=path.suffix.lstrip(".") or "png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def pairs(dim: int) -> list[tuple[int, int]]:
    """Column pairs to show: (0, 1) for 2-D, consecutive pairs (0,1), (2,3), ... for more."""
    if dim == 1:
        return [(0, 0)]
    return [(k, k + 1) for k in range(0, dim - 1, 2)] + ([(dim - 2, dim - 1)] if dim % 2 else [])


def class_colours(labels: np.ndarray) -> np.ndarray:
    """RGBA per point: class k always gets tab10 colour k (mod 10), whichever classes are present."""
    return matplotlib.colormaps[CLASS_MAP](np.asarray(labels, dtype=np.int64) % 10)


#: Two columns share a scale when their spans differ by at most this factor; only then are the axes equal.
SAME_SCALE = 4.0


def shares_scale(spans: np.ndarray) -> bool:
    """Whether two columns with these spans belong on equal axes."""
    small, large = float(np.min(spans)), float(np.max(spans))
    return small > 0 and large / small <= SAME_SCALE


def scatter(
    ax: Axes,
    x: np.ndarray,
    pair: tuple[int, int],
    labels: np.ndarray | None,
    title: str,
    *,
    ticks: bool = True,
    axis_names: Sequence[str] | None = None,
) -> None:
    """Points of columns `pair` (a histogram for 1-D data), coloured by class if labelled, on equal axes where the
    columns share a scale, labelled with the data's column names (`axis_names`, else x0, x1, ...)."""
    i, j = pair
    if i == j:
        ax.hist(x[:, i], bins=80, color="tab:blue", alpha=0.8)
    else:
        colour = class_colours(labels) if labels is not None else "tab:blue"
        ax.scatter(x[:, i], x[:, j], s=POINT_SIZE, alpha=0.6, linewidths=0, c=colour)
        if shares_scale(np.ptp(x[:, [i, j]], axis=0)):
            ax.set_aspect("equal", adjustable="box")
        if ticks:
            ax.set_xlabel(axis_names[i] if axis_names else f"x{i}")
            ax.set_ylabel(axis_names[j] if axis_names else f"x{j}")
    if not ticks:
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def class_legend(fig: Figure, class_names: Sequence[str]) -> None:
    handles = [
        Line2D([], [], marker="o", linestyle="", color=class_colours(np.array([k]))[0], label=name)
        for k, name in enumerate(class_names)
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 8), fontsize=8)


def _panel_height(lo: np.ndarray, hi: np.ndarray, *, width: float) -> float:
    """Inches of height a panel `width` inches wide needs for the box lo..hi: the box's shape on equal axes (kept
    readable), a fixed height where the columns do not share a scale."""
    if not shares_scale(hi - lo):
        return 0.8 * width
    aspect = float((hi[1] - lo[1]) / max(hi[0] - lo[0], 1e-12))
    return width * min(max(aspect, 0.4), 1.6)


def plot_comparison(
    data: np.ndarray,
    samples: np.ndarray,
    path: Path,
    *,
    caption: str,
    data_labels: np.ndarray | None = None,
    sample_labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    axis_names: Sequence[str] | None = None,
) -> None:
    """Data vs generated side by side, in data units, on the same axes; one row per column pair when D > 2."""
    rows = pairs(data.shape[1])
    boxes = []
    for pair in rows:
        lo, hi = np.percentile(np.concatenate([data, samples])[:, list(pair)], [0.2, 99.8], axis=0)
        pad = 0.08 * (hi - lo)
        boxes.append((lo - pad, hi + pad))
    # Panels are drawn with equal axes, so the figure takes the data's shape: a fixed height left moons (2:1)
    # floating in white space under a distant title.
    heights = [
        _panel_height(lo, hi, width=4.0) if p[0] != p[1] else 3.6 for p, (lo, hi) in zip(rows, boxes, strict=True)
    ]
    fig = Figure(figsize=(9, sum(heights) + 0.7 * len(rows) + 0.3), layout="constrained")
    axes = fig.subplots(len(rows), 2, squeeze=False, height_ratios=heights)
    for row, (pair, (lo, hi)) in enumerate(zip(rows, boxes, strict=True)):
        scatter(axes[row, 0], data, pair, data_labels, f"data (n = {len(data)})", axis_names=axis_names)
        scatter(axes[row, 1], samples, pair, sample_labels, f"generated (n = {len(samples)})", axis_names=axis_names)
        for ax in axes[row]:
            if pair[0] != pair[1]:
                ax.set_xlim(lo[0], hi[0])
                ax.set_ylim(lo[1], hi[1])
    fig.suptitle(caption, fontsize=10)
    if class_names:
        class_legend(fig, class_names)
    save_figure(fig, path)


def plot_process(
    columns: Sequence[tuple[str, np.ndarray, np.ndarray | None]],
    path: Path,
    *,
    caption: str,
    labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
) -> None:
    """The reverse process: x_t in the top row and the model's guess x̂0 under it, one column per chosen step.

    Each column is (title, x_t, x̂0 or None); axes are shared per row so the points visibly contract.
    """
    fig = Figure(figsize=(2.5 * len(columns), 5.2), layout="constrained")
    axes = fig.subplots(2, len(columns), squeeze=False)
    pair = pairs(columns[0][1].shape[1])[0]
    for c, (title, x, x0) in enumerate(columns):
        scatter(axes[0, c], x, pair, labels, title, ticks=False)
        if x0 is not None:
            scatter(axes[1, c], x0, pair, labels, "", ticks=False)
        else:
            axes[1, c].axis("off")
    axes[0, 0].set_ylabel("x_t (the chain)", fontsize=9)
    axes[1, 0].set_ylabel("x̂0 (the model's guess)", fontsize=9)
    for row in axes:  # shared limits per row, from the last (sharpest) column
        ref = row[-1] if row[-1].has_data() else row[-2]
        for ax in row:
            if ax.has_data():
                ax.set_xlim(ref.get_xlim())
                ax.set_ylim(ref.get_ylim())
    fig.suptitle(caption, fontsize=10)
    if class_names:
        class_legend(fig, class_names)
    save_figure(fig, path)


def plot_snapshots(
    snapshots: Sequence[tuple[str, np.ndarray]],
    path: Path,
    *,
    title: str,
    labels: np.ndarray | None = None,
) -> None:
    """A strip of scatter plots (first two columns), one per titled state, on the last state's axes."""
    fig = Figure(figsize=(2.6 * len(snapshots), 3.0), layout="constrained")
    axes = fig.subplots(1, len(snapshots), squeeze=False)
    for ax, (name, x) in zip(axes[0], snapshots, strict=True):
        scatter(ax, x, pairs(x.shape[1])[0], labels, name, ticks=False)
    last = axes[0, -1]
    for ax in axes[0]:
        ax.set_xlim(last.get_xlim())
        ax.set_ylim(last.get_ylim())
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def snapshot_figure(x: np.ndarray, title: str) -> Figure:
    """One scatter of samples (for TensorBoard)."""
    fig = Figure(figsize=(4, 4), layout="constrained")
    scatter(fig.subplots(), x, pairs(x.shape[1])[0], None, title)
    FigureCanvasAgg(fig)
    return fig


def smooth(values: np.ndarray, span: int) -> np.ndarray:
    """Exponential moving average with the given span (in points), started at the first value."""
    alpha = 2.0 / (span + 1.0)
    out = np.empty_like(values, dtype=np.float64)
    acc = float(values[0])
    for k, v in enumerate(values):
        acc = alpha * float(v) + (1 - alpha) * acc
        out[k] = acc
    return out


def plot_loss(steps: Sequence[int], losses: Sequence[float], path: Path, *, caption: str) -> None:
    """The logged loss (light) and its moving average (dark) against step, log scale."""
    loss = np.asarray(losses, dtype=np.float64)
    fig = Figure(figsize=(6.5, 3.6), layout="constrained")
    ax = fig.subplots()
    ax.plot(steps, loss, color="tab:blue", alpha=0.3, linewidth=1, label="logged (mean over each interval)")
    if len(loss) > 3:
        ax.plot(steps, smooth(loss, max(3, len(loss) // 20)), color="tab:blue", linewidth=2, label="moving average")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    ax.set_title(caption, fontsize=10)
    save_figure(fig, path)


def plot_schedule(schedule: Schedule, path: Path, name: str) -> None:
    """ᾱ_t, log SNR_t and the reverse-step variances against t, each panel titled on its own line."""
    t = schedule.timesteps.numpy()
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    if schedule.scales is None:
        axes[0].plot(t, schedule.alphas_cumprod.numpy())
        axes[0].set_title(f"signal kept: ᾱ_t\n(last step: {schedule.terminal_alpha_bar:.2g})", fontsize=10)
    else:  # not variance-preserving (the flow path): show the path itself
        axes[0].plot(t, schedule.alpha.numpy(), label="α_t (signal)")
        axes[0].plot(t, schedule.sigma.numpy(), label="σ_t (noise)")
        axes[0].legend(fontsize=8)
        axes[0].set_title(f"x_t = α_t x_0 + σ_t ε\n(last step: α = {float(schedule.alpha[-1]):.2g})", fontsize=10)
    axes[1].plot(t, schedule.log_snr.numpy())
    axes[1].set_title("log SNR_t = log α_t² / σ_t²", fontsize=10)
    axes[2].plot(t[1:], schedule.posterior_variance.numpy()[1:], label="β̃_t (small)")
    axes[2].plot(t, schedule.betas.numpy(), label="β_t (large)", alpha=0.7)
    axes[2].set_yscale("log")
    axes[2].legend(fontsize=8)
    axes[2].set_title("reverse-step variance", fontsize=10)
    for ax in axes:
        ax.set_xlabel("timestep t")
        ax.grid(alpha=0.3)
    fig.suptitle(f"noise schedule: {name}", fontsize=11)
    save_figure(fig, path)


def plot_guidance_grid(
    cells: Sequence[Sequence[np.ndarray]],
    class_names: Sequence[str],
    weights: Sequence[float],
    path: Path,
    *,
    caption: str,
    background: np.ndarray | None = None,
) -> None:
    """Samples per class (rows) and guidance weight (columns), over the data in grey (first two columns)."""
    rows, cols = len(class_names), len(weights)
    fig = Figure(figsize=(2.3 * cols, 2.4 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    j = 1 if cells[0][0].shape[1] > 1 else 0
    for k, name in enumerate(class_names):
        for c, w in enumerate(weights):
            ax = axes[k, c]
            if background is not None:
                ax.scatter(background[:, 0], background[:, j], s=1.0, c="0.85", linewidths=0)
            x = cells[k][c]
            ax.scatter(x[:, 0], x[:, j], s=POINT_SIZE, alpha=0.6, linewidths=0, c=class_colours(np.full(len(x), k)))
            if shares_scale(np.ptp((x if background is None else background)[:, [0, j]], axis=0)):
                ax.set_aspect("equal", adjustable="box")
            ax.set_xticks([])
            ax.set_yticks([])
            if k == 0:
                ax.set_title(f"w = {w:g}" + (" (unconditional)" if w == 0 else ""), fontsize=9)
            if c == 0:
                ax.set_ylabel(name)
    fig.suptitle(f"classifier-free guidance ε(x,∅) + w·(ε(x,c) − ε(x,∅)); {caption}", fontsize=10)
    save_figure(fig, path)


def write_gif(
    frames: Sequence[tuple[str, np.ndarray]],
    path: Path,
    *,
    limits: np.ndarray,
    labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    caption: str = "",
    ms_per_frame: int = 120,
) -> None:
    """An animated GIF of point clouds (first two columns) on fixed equal axes; the last frame is held longer.

    `labels` colour each point by class in every frame (points keep their identity along the chain).
    """
    colour = class_colours(labels) if labels is not None else "tab:blue"
    height = _panel_height(np.asarray(limits)[:, 0], np.asarray(limits)[:, 1], width=4.2)
    fig = Figure(figsize=(4.4, height + (1.0 if caption else 0.6)), layout="constrained")
    ax = fig.subplots()
    column = 1 if frames[0][1].shape[1] > 1 else 0
    cloud = ax.scatter(frames[0][1][:, 0], frames[0][1][:, column], s=POINT_SIZE, alpha=0.6, linewidths=0, c=colour)
    ax.set_xlim(limits[0])
    ax.set_ylim(limits[1])
    if shares_scale(np.ptp(np.asarray(limits), axis=1)):
        ax.set_aspect("equal", adjustable="box")
    title = ax.set_title(frames[0][0], fontsize=10)
    if caption:
        fig.suptitle(caption, fontsize=8)
    if class_names:
        class_legend(fig, class_names)
    canvas = FigureCanvasAgg(fig)
    images = []
    for i, (text, x) in enumerate(frames):
        cloud.set_offsets(x[:, [0, column]])
        title.set_text(text)
        canvas.draw()
        if i == 0:  # every frame has the same layout: solving it once made the GIF faster (commit dbdb2d8)
            fig.set_layout_engine("none")
        images.append(Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3]))
    buf = io.BytesIO()
    durations = [ms_per_frame] * (len(images) - 1) + [1500]
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    atomic_write_bytes(path, buf.getvalue())
