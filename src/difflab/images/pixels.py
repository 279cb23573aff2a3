"""Pixels: the fixed [0, 255] ↦ [-1, 1] normalization, uint8 conversion, and mosaics written as PNG."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from difflab.checkpoint import atomic_write_bytes
from difflab.data.normalize import MinMaxScaler

#: One range for every pixel: 0..255 ↦ [-1, 1] (a per-pixel range would blow up the always-black border).
PIXEL_SCALER = MinMaxScaler(np.array([0.0]), np.array([255.0]))
PAD = 2
PAD_VALUE = 96


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Model-unit images in [-1, 1] → uint8 0..255 (values outside the range are clipped)."""
    return ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def from_uint8(images: np.ndarray) -> torch.Tensor:
    """uint8 0..255 → model-unit images in [-1, 1] (float32)."""
    return torch.as_tensor(images, dtype=torch.float32) / 127.5 - 1.0


def to_unit(x: torch.Tensor) -> np.ndarray:
    """Model-unit images in [-1, 1] → floats in [0, 1] (what `Run.sample` returns)."""
    return ((x.detach().float().cpu().clamp(-1, 1) + 1) / 2).numpy()


def unit_to_uint8(x: np.ndarray) -> np.ndarray:
    """Images as floats in [0, 1] (what `Run.sample` returns) → uint8."""
    return np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


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


def font(size: int = 12) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled font at `size` pixels (no system fonts needed)."""
    try:
        return ImageFont.load_default(size)
    except TypeError:  # Pillow < 10.1 has one fixed-size bitmap font
        return ImageFont.load_default()


def labelled(
    picture: Image.Image,
    title: str,
    *,
    row_labels: list[str] | None = None,
    row_height: int = 0,
    col_labels: list[str] | None = None,
    col_width: int = 0,
    size: int = 12,
) -> Image.Image:
    """`picture` on a white canvas with a title above, optional labels left of each row and above each column."""
    f = font(size)
    left = max((int(f.getlength(t)) for t in row_labels), default=0) + 8 if row_labels else 0
    top_title = (size + 4) * (title.count("\n") + 1) + 4
    top_cols = size + 4 if col_labels else 0
    width = max(picture.width + left, max(int(f.getlength(line)) for line in title.split("\n")) + 8)
    canvas = Image.new("RGB", (width, picture.height + top_title + top_cols), "white")
    canvas.paste(picture.convert("RGB"), (left, top_title + top_cols))
    draw = ImageDraw.Draw(canvas)
    draw.multiline_text((4, 3), title, fill="black", font=f, spacing=4)
    for k, text in enumerate(row_labels or []):
        y = top_title + top_cols + k * row_height + row_height // 2 - size // 2
        draw.text((4, y), text, fill="black", font=f)
    for k, text in enumerate(col_labels or []):
        x = left + k * col_width + max(0, (col_width - int(f.getlength(text))) // 2)
        draw.text((x, top_title), text, fill="black", font=f)
    return canvas


def save_picture(picture: Image.Image, path: Path) -> None:
    """Write a Pillow image as PNG, atomically."""
    buf = io.BytesIO()
    picture.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
