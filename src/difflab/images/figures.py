"""Figures of an image run: class grids, the denoising trajectory, a GIF, the forward strip, rendered text.

Pictures are pixel mosaics written with Pillow, labelled with what made them (class, t, sampler, guidance).
Every sample comes from the sampler's callback or result, so figures show exactly what `sample` would produce.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from PIL import Image

import difflab.frames as frame_choice
from difflab.checkpoint import atomic_write_bytes
from difflab.data.source import data_title
from difflab.errors import UserError
from difflab.images.defaults import IMAGES
from difflab.images.pixels import PAD, from_uint8, labelled, save_picture, tile, to_uint8
from difflab.images.sets import image_sets
from difflab.limits import check_number
from difflab.outputs import prepare_folder, prepare_output, to_pil
from difflab.process import q_sample

if TYPE_CHECKING:
    from difflab.kind import RunView
    from difflab.sampling import Sampling

#: Pixel height of titles and labels: legible at the picture's stored size.
LABEL_SIZE = 14
TRAJECTORY_ROWS = 4
TRAJECTORY_COLUMNS = 8
SCALE = 2


def scale_for(width: int, least: int = 56) -> int:
    """Pixel enlargement so a cell (width + padding) is at least `least` pixels wide: room for its label."""
    return max(SCALE, -(-least // (width + PAD)))


def _file_name(name: str) -> str:
    """A class name safe in a file name (EMNIST names are single characters, folder names anything)."""
    return "".join(ch if ch.isalnum() else f"u{ord(ch):04x}" for ch in name)


def caption(run: RunView, sampling: Sampling) -> str:
    return f"{data_title(run.config.data)}: {sampling.describe(bool(run.class_names))}"


def class_grids(
    run: RunView, folder: Path, sampling: Sampling, *, per_class: int, seed: int, progress: bool | None
) -> list[Path]:
    """An 8-wide grid of `per_class` samples for each class, and `all-classes.png` (one labelled row per class)."""
    names = run.class_names
    if not names:
        raise UserError("class grids need a run trained with conditional classes")
    labels = torch.arange(len(names)).repeat_interleave(per_class)
    x = run.draw(len(labels), sampling, labels=labels, seed=seed, progress=progress)
    images = to_uint8(x).reshape(len(names), per_class, *run.info.shape)
    text = caption(run, sampling)
    paths = []
    for k, name in enumerate(names):
        path = folder / f"class-{k:02d}-{_file_name(name)}.png"
        grid = to_pil(tile(images[k], 8), scale_for(run.info.shape[2]))
        save_picture(labelled(grid, f"class {name}; {text}", size=LABEL_SIZE), path)
        paths.append(path)
    everything = folder / "all-classes.png"
    cols = min(per_class, 16)
    scale = scale_for(run.info.shape[2], 40)
    mosaic = to_pil(tile(images[:, :cols].reshape(-1, *run.info.shape), cols), scale)
    row_height = (run.info.shape[1] + PAD) * scale
    picture = labelled(mosaic, text, row_labels=list(names), row_height=row_height, size=LABEL_SIZE)
    save_picture(picture, everything)
    return [*paths, everything]


def record(
    run: RunView,
    sampling: Sampling,
    labels: torch.Tensor | None,
    n: int,
    columns: int,
    seed: int,
    progress: bool | None,
) -> tuple[list[tuple[int, np.ndarray, np.ndarray]], np.ndarray]:
    """(t, x_t, x̂0) as uint8 at up to `columns` steps chosen evenly in log SNR (noisiest first), and the samples."""
    wanted = set(frame_choice.by_log_snr(sampling.schedule(run.model), columns))
    states: list[tuple[int, np.ndarray, np.ndarray]] = []

    def keep(state: dict[str, Any]) -> None:
        if state["i"] in wanted:
            states.append((state["t"], to_uint8(state["x"]), to_uint8(state["x0"])))

    one_chunk = replace(sampling, chunk_size=max(n, 1))
    final = to_uint8(run.draw(n, one_chunk, labels=labels, seed=seed, callback=keep, progress=progress))
    return states, final


def trajectory(
    run: RunView, sampling: Sampling, labels: torch.Tensor | None, path: Path, seed: int, progress: bool | None
) -> None:
    """Per sample two rows, x_t and the model's guess x̂0, at steps evenly in log SNR, then the final image."""
    n = len(labels) if labels is not None else TRAJECTORY_ROWS
    states, final = record(run, sampling, labels, n, TRAJECTORY_COLUMNS, seed, progress)
    rows = []
    for k in range(n):
        rows.append([x[k] for _, x, _ in states] + [final[k]])
        rows.append([x0[k] for _, _, x0 in states] + [final[k]])
    cells = np.stack([np.stack(r) for r in rows])  # (2n, columns+1, C, H, W)
    scale = scale_for(run.info.shape[2])
    mosaic = to_pil(tile(cells.reshape(-1, *cells.shape[2:]), cells.shape[1]), scale)
    log_snr = run.model.schedule.log_snr
    col_labels = [f"t={t} ({float(log_snr[t]):.0f})" for t, _, _ in states] + ["final"]
    names = run.class_names
    row_labels = []
    for k in range(n):
        who = names[int(labels[k])] if names and labels is not None else f"#{k}"
        row_labels += [f"{who}: x_t", f"{who}: guess x0"]
    size = (run.info.shape[1] + PAD) * scale
    title = f"denoising, t (log SNR); {caption(run, sampling)}"
    picture = labelled(
        mosaic, title, row_labels=row_labels, row_height=size, col_labels=col_labels, col_width=size, size=10
    )
    save_picture(picture, path)


def forward_cells(run: RunView, image: np.ndarray, columns: int, seed: int = 0) -> tuple[list[int], np.ndarray]:
    """One uint8 image (C, H, W) and its noisings by q(x_t | x_0) at t evenly in log SNR, one noise draw for all:
    (the t's, uint8 cells (columns, C, H, W) starting with the clean image)."""
    schedule = run.model.schedule
    x0 = from_uint8(image)[None]
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    ts = list(reversed(frame_choice.by_log_snr(schedule, columns - 1)))
    noisy = [q_sample(schedule, x0, torch.tensor([t]), noise) for t in ts]
    return ts, to_uint8(torch.cat([x0, *noisy]))


def forward_strip(run: RunView, image: np.ndarray, path: Path, *, columns: int = 8, seed: int = 0) -> None:
    """forward.png: the clean image, then its noisings with the t of each column above it."""
    ts, cells = forward_cells(run, image, columns, seed)
    scale = scale_for(image.shape[2])
    mosaic = to_pil(tile(cells, len(cells)), scale)
    size = (image.shape[1] + PAD) * scale
    col_labels = ["data"] + [f"t={t}" for t in ts]
    title = f"forward process q(x_t | x_0), {run.config.schedule}"
    save_picture(labelled(mosaic, title, col_labels=col_labels, col_width=size, size=10), path)


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
    """Class grids (`n` per class), all-classes.png, trajectory.png, forward.png, and progress figures if any."""
    per_class = check_number("n", IMAGES.plot_n if n is None else n)
    prepare_folder(folder)
    written = (
        class_grids(run, folder, sampling, per_class=per_class, seed=seed, progress=progress) if run.class_names else []
    )
    labels = run.labels_for(TRAJECTORY_ROWS, label, every_class=True)
    trajectory(run, sampling, labels, folder / "trajectory.png", seed, progress)
    train, _ = image_sets(run)
    names = train.class_names
    pick = names.index("Z") if "Z" in names else 0
    forward_strip(run, train.images[np.flatnonzero(train.labels == pick)[0]], folder / "forward.png", seed=seed)
    return [*written, folder / "trajectory.png", folder / "forward.png", *write_progress(run.snapshots(), folder)]


def write_gif_frames(pictures: list[Image.Image], path: Path, hold_ms: int = 1000, ms: int = 120) -> None:
    """An animated GIF of Pillow frames, the last held longer."""
    buf = io.BytesIO()
    frames = [p.convert("P") for p in pictures]
    durations = [ms] * (len(frames) - 1) + [hold_ms]
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0)
    atomic_write_bytes(path, buf.getvalue())


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
    """A GIF of a grid of n samples (cycling over classes) being denoised, frames evenly in log SNR."""
    n = check_number("n", IMAGES.animate_n if n is None else n)
    frames = check_number("frames", frames)
    prepare_output(path, (".gif",), "animations")
    labels = run.labels_for(n, label, every_class=True)
    states, final = record(run, sampling, labels, n, frames, seed, progress)
    cols = int(np.ceil(np.sqrt(n)))
    text = caption(run, sampling)
    if labels is not None and run.class_names:
        shown = [run.class_names[int(k)] for k in labels[: cols * 2]]
        text += f"; classes {' '.join(shown)} ..."
    log_snr = run.model.schedule.log_snr
    pictures = [
        labelled(to_pil(tile(x, cols), 3), f"t = {t}, log SNR {float(log_snr[t]):.1f}\n{text}", size=10)
        for t, x, _ in states
    ]
    pictures.append(labelled(to_pil(tile(final, cols), 3), f"generated\n{text}", size=10))
    write_gif_frames(pictures, path)
    return path


def write_progress(snapshots: list[tuple[int, np.ndarray]], folder: Path) -> list[Path]:
    """Samples during training: one labelled row per shown step (progress.png) and a GIF over every snapshot."""
    if not snapshots:
        return []
    prepare_folder(folder)
    strip, gif = folder / "progress.png", folder / "progress.gif"
    shown = frame_choice.strip_of(snapshots)
    cells = np.stack([x for _, x in shown])  # (rows, n, C, H, W)
    scale = scale_for(cells.shape[-1], 24)
    mosaic = to_pil(tile(cells.reshape(-1, *cells.shape[2:]), cells.shape[1]), scale)
    row_height = (cells.shape[-2] + PAD) * scale
    title = "samples during training (EMA weights, same noise each time)"
    save_picture(labelled(mosaic, title, row_labels=[f"step {s}" for s, _ in shown], row_height=row_height), strip)
    cols = int(np.ceil(np.sqrt(snapshots[0][1].shape[0])))
    write_gif_frames([labelled(to_pil(tile(x, cols), 3), f"training step {s}", size=10) for s, x in snapshots], gif)
    return [strip, gif]


def class_for_char(names: list[str], ch: str) -> int:
    """The class named `ch`, else the one named by its other case (EMNIST merges some letter cases)."""
    for candidate in (ch, ch.swapcase()):
        if candidate in names:
            return names.index(candidate)
    raise UserError(f"the model has no class for {ch!r}; it knows: {''.join(sorted(names))}")


#: A rendered line longer than this is no longer a picture of text but a batch job.
MAX_TEXT = 1000


def render_text(run: RunView, text: str, sampling: Sampling, *, seed: int, progress: bool | None) -> np.ndarray:
    """Write `text` with one class-conditional sample per character; spaces are blank cells. Returns uint8 (H, W)
    for grey images, (H, W, C) for colour."""
    names = run.class_names
    if not names:
        raise UserError("write needs a run trained with conditional classes of characters")
    if not text.strip():
        raise UserError("nothing to write: the text is empty")
    if len(text) > MAX_TEXT:
        raise UserError(f"the text has {len(text)} characters; write renders at most {MAX_TEXT}")
    chars = [ch for ch in text if ch != " "]
    labels = torch.tensor([class_for_char(names, ch) for ch in chars], dtype=torch.int64)
    glyphs = iter(to_uint8(run.draw(len(labels), sampling, labels=labels, seed=seed, progress=progress)))
    blank = np.zeros(run.info.shape, dtype=np.uint8)
    cells = np.stack([blank if ch == " " else next(glyphs) for ch in text])
    picture = tile(cells, len(text), pad=0)
    return picture[..., 0] if picture.shape[2] == 1 else picture  # what Pillow's Image.fromarray takes as it is
