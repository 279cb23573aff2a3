"""Figures for image runs: class grids, the denoising trajectory, a GIF, the forward strip, rendered text.

All pictures are plain pixel mosaics written with Pillow; every sample comes from the sampler's
callback or result, so figures show exactly what `sample` would produce.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from difflab.checkpoint import atomic_write_bytes
from difflab.errors import UserError
from difflab.image_run import sample_images, to_uint8
from difflab.process import q_sample
from difflab.run import LoadedRun
from difflab.schedule import Schedule

PAD = 2
PAD_VALUE = 96


def tile(images: np.ndarray, cols: int, pad: int = PAD) -> np.ndarray:
    """uint8 (N, C, H, W) → one (rows·(H+pad)+pad, cols·(W+pad)+pad, C) mosaic on a grey background."""
    n, c, h, w = images.shape
    rows = max(1, -(-n // cols))
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), PAD_VALUE, dtype=np.uint8)
    for k in range(n):
        r, q = divmod(k, cols)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        out[y : y + h, x : x + w] = images[k].transpose(1, 2, 0)
    return out


def to_pil(mosaic: np.ndarray, scale: int = 1) -> Image.Image:
    """(H, W, C) uint8 → a Pillow image, optionally enlarged with nearest-neighbour pixels."""
    im = Image.fromarray(mosaic[..., 0] if mosaic.shape[2] == 1 else mosaic)
    return im.resize((im.width * scale, im.height * scale), Image.NEAREST) if scale > 1 else im


def save_png(mosaic: np.ndarray, path: Path, scale: int = 2) -> None:
    """Write a mosaic as PNG, atomically."""
    buf = io.BytesIO()
    to_pil(mosaic, scale).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


def _file_name(name: str) -> str:
    """A class name safe in a file name (EMNIST names are single characters, folder names anything)."""
    return "".join(ch if ch.isalnum() else f"u{ord(ch):04x}" for ch in name)


def class_grids(run: LoadedRun, out_dir: Path, *, per_class: int = 64, **sampling: Any) -> list[Path]:
    """An 8-wide grid of `per_class` samples for each class, and `all-classes.png` (one row per class)."""
    names = run.info.class_names
    if not run.cfg.conditional or not names:
        raise UserError("class grids need a run trained with --conditional")
    labels = torch.arange(len(names)).repeat_interleave(per_class)
    images = to_uint8(sample_images(run, labels, **sampling)).reshape(len(names), per_class, *run.info.shape)
    paths = []
    for k, name in enumerate(names):
        path = out_dir / f"class-{k:02d}-{_file_name(name)}.png"
        save_png(tile(images[k], 8), path)
        paths.append(path)
    everything = out_dir / "all-classes.png"
    save_png(tile(images[:, : min(per_class, 16)].reshape(-1, *run.info.shape), min(per_class, 16)), everything)
    return [*paths, everything]


def record(
    run: LoadedRun, labels: torch.Tensor | None, n: int, columns: int, **sampling: Any
) -> tuple[list[np.ndarray], np.ndarray]:
    """x_t at `columns` evenly spaced sampler steps (uint8, noisiest first), and the final n samples."""
    steps = sampling.get("steps", 50)
    wanted = set(np.linspace(0, steps - 1, columns).round().astype(int).tolist())
    frames: list[np.ndarray] = []

    def keep(state: dict[str, Any]) -> None:
        if state["i"] in wanted:
            frames.append(to_uint8(state["x"]))

    final = to_uint8(sample_images(run, labels, n=n, callback=keep, chunk_size=n, **sampling))
    return frames, final


def trajectory(
    run: LoadedRun, labels: torch.Tensor | None, n: int, path: Path, *, columns: int = 10, **sampling: Any
) -> None:
    """One row per sample, columns from pure noise to the final image."""
    frames, final = record(run, labels, n, columns, **sampling)
    stack = np.stack([*frames, final], axis=1)  # (N, columns+1, C, H, W)
    save_png(tile(stack.reshape(-1, *stack.shape[2:]), stack.shape[1]), path)


def gif(run: LoadedRun, labels: torch.Tensor | None, n: int, path: Path, *, frames: int = 40, **sampling: Any) -> None:
    """An animated GIF of a grid of n samples being denoised; the last frame is held for a second."""
    states, final = record(run, labels, n, frames, **sampling)
    cols = int(np.ceil(np.sqrt(n)))
    pictures = [to_pil(tile(x, cols), 3).convert("P") for x in [*states, final]]
    durations = [80] * len(states) + [1000]
    buf = io.BytesIO()
    pictures[0].save(buf, format="GIF", save_all=True, append_images=pictures[1:], duration=durations, loop=0)
    atomic_write_bytes(path, buf.getvalue())


def forward_strip(schedule: Schedule, image: np.ndarray, path: Path, *, columns: int = 8, seed: int = 0) -> None:
    """One uint8 image (C, H, W) noised by q(x_t | x_0) at evenly spaced t, one noise draw for all t."""
    x0 = torch.as_tensor(image, dtype=torch.float32)[None] / 127.5 - 1.0
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    ts = np.linspace(0, len(schedule) - 1, columns - 1).round().astype(int)
    noisy = [q_sample(schedule, x0, torch.tensor([int(t)]), noise) for t in ts]
    save_png(tile(to_uint8(torch.cat([x0, *noisy])), columns), path, scale=3)


def class_for_char(names: list[str], ch: str) -> int:
    """The class named `ch`, else the one named by its other case (EMNIST merges some letter cases)."""
    for candidate in (ch, ch.swapcase()):
        if candidate in names:
            return names.index(candidate)
    raise UserError(f"the model has no class for {ch!r}; it knows: {''.join(sorted(names))}")


def render_text(run: LoadedRun, text: str, **sampling: Any) -> np.ndarray:
    """Write `text` with one class-conditional sample per character; spaces are blank cells. Returns (H, W, C)."""
    names = run.info.class_names
    if not run.cfg.conditional or not names:
        raise UserError("write needs a run trained with --conditional on characters")
    if not text.strip():
        raise UserError("nothing to write: the text is empty")
    chars = [ch for ch in text if ch != " "]
    labels = torch.tensor([class_for_char(names, ch) for ch in chars], dtype=torch.int64)
    glyphs = iter(to_uint8(sample_images(run, labels, **sampling)))
    blank = np.zeros(run.info.shape, dtype=np.uint8)
    cells = np.stack([blank if ch == " " else next(glyphs) for ch in text])
    return tile(cells, len(text), pad=0)
