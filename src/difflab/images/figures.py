"""Figures of an image run: class grids, the denoising trajectory, a GIF, the forward strip, rendered text.

All pictures are plain pixel mosaics written with Pillow; every sample comes from the sampler's callback or
result, so figures show exactly what `sample` would produce.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from difflab.checkpoint import atomic_write_bytes
from difflab.errors import UserError
from difflab.images.pixels import save_png, tile, to_pil, to_uint8
from difflab.limits import check_number
from difflab.outputs import prepare_folder, prepare_output
from difflab.process import q_sample

if TYPE_CHECKING:
    from difflab.api import Run
    from difflab.sampling import Sampling

DEFAULT_PER_CLASS = 64
TRAJECTORY_ROWS = 8
GIF_SAMPLES = 16


def _file_name(name: str) -> str:
    """A class name safe in a file name (EMNIST names are single characters, folder names anything)."""
    return "".join(ch if ch.isalnum() else f"u{ord(ch):04x}" for ch in name)


def class_grids(
    run: Run, folder: Path, sampling: Sampling, *, per_class: int, seed: int, progress: bool | None
) -> list[Path]:
    """An 8-wide grid of `per_class` samples for each class, and `all-classes.png` (one row per class)."""
    names = run.class_names
    if not names:
        raise UserError("class grids need a run trained with conditional classes")
    labels = torch.arange(len(names)).repeat_interleave(per_class)
    x = run.draw(len(labels), sampling, labels=labels, seed=seed, progress=progress)
    images = to_uint8(x).reshape(len(names), per_class, *run.info.shape)
    paths = []
    for k, name in enumerate(names):
        path = folder / f"class-{k:02d}-{_file_name(name)}.png"
        save_png(tile(images[k], 8), path)
        paths.append(path)
    everything = folder / "all-classes.png"
    save_png(tile(images[:, : min(per_class, 16)].reshape(-1, *run.info.shape), min(per_class, 16)), everything)
    return [*paths, everything]


def record(
    run: Run,
    sampling: Sampling,
    labels: torch.Tensor | None,
    n: int,
    columns: int,
    seed: int,
    progress: bool | None,
) -> tuple[list[np.ndarray], np.ndarray]:
    """x_t at `columns` evenly spaced sampler steps (uint8, noisiest first), and the final n samples."""
    wanted = set(np.linspace(0, sampling.steps - 1, columns).round().astype(int).tolist())
    frames: list[np.ndarray] = []

    def keep(state: dict[str, Any]) -> None:
        if state["i"] in wanted:
            frames.append(to_uint8(state["x"]))

    one_chunk = replace(sampling, chunk_size=max(n, 1))
    final = to_uint8(run.draw(n, one_chunk, labels=labels, seed=seed, callback=keep, progress=progress))
    return frames, final


def forward_strip(run: Run, image: np.ndarray, path: Path, *, columns: int = 8, seed: int = 0) -> None:
    """One uint8 image (C, H, W) noised by q(x_t | x_0) at evenly spaced t, one noise draw for all t."""
    schedule = run.model.schedule
    x0 = torch.as_tensor(image, dtype=torch.float32)[None] / 127.5 - 1.0
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    ts = np.linspace(0, len(schedule) - 1, columns - 1).round().astype(int)
    noisy = [q_sample(schedule, x0, torch.tensor([int(t)]), noise) for t in ts]
    save_png(tile(to_uint8(torch.cat([x0, *noisy])), columns), path, scale=3)


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
    """Class grids (`n` per class), all-classes.png, trajectory.png and forward.png."""
    per_class = check_number("n", DEFAULT_PER_CLASS if n is None else n)
    prepare_folder(folder)
    written = (
        class_grids(run, folder, sampling, per_class=per_class, seed=seed, progress=progress) if run.class_names else []
    )
    labels = run.labels_for(TRAJECTORY_ROWS, label, every_class=True)
    frames, final = record(run, sampling, labels, TRAJECTORY_ROWS, 10, seed, progress)
    stack = np.stack([*frames, final], axis=1)  # (N, columns+1, C, H, W)
    save_png(tile(stack.reshape(-1, *stack.shape[2:]), stack.shape[1]), folder / "trajectory.png")
    train, _ = run.kind.image_sets(run)  # type: ignore[attr-defined]
    names = train.class_names
    pick = names.index("Z") if "Z" in names else 0
    forward_strip(run, train.images[np.flatnonzero(train.labels == pick)[0]], folder / "forward.png", seed=seed)
    return [*written, folder / "trajectory.png", folder / "forward.png"]


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
    """An animated GIF of a grid of n samples (cycling over classes) being denoised; the last frame is held."""
    n = check_number("n", GIF_SAMPLES if n is None else n)
    frames = check_number("frames", frames)
    prepare_output(path, (".gif",), "animations")
    labels = run.labels_for(n, label, every_class=True)
    states, final = record(run, sampling, labels, n, frames, seed, progress)
    cols = int(np.ceil(np.sqrt(n)))
    pictures = [to_pil(tile(x, cols), 3).convert("P") for x in [*states, final]]
    durations = [80] * len(states) + [1000]
    buf = io.BytesIO()
    pictures[0].save(buf, format="GIF", save_all=True, append_images=pictures[1:], duration=durations, loop=0)
    atomic_write_bytes(path, buf.getvalue())
    return path


def class_for_char(names: list[str], ch: str) -> int:
    """The class named `ch`, else the one named by its other case (EMNIST merges some letter cases)."""
    for candidate in (ch, ch.swapcase()):
        if candidate in names:
            return names.index(candidate)
    raise UserError(f"the model has no class for {ch!r}; it knows: {''.join(sorted(names))}")


#: A rendered line longer than this is no longer a picture of text but a batch job.
MAX_TEXT = 1000


def render_text(run: Run, text: str, sampling: Sampling, *, seed: int, progress: bool | None) -> np.ndarray:
    """Write `text` with one class-conditional sample per character; spaces are blank cells. Returns (H, W, C)."""
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
    return tile(cells, len(text), pad=0)
