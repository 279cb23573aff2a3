"""Pixels: the fixed [0, 255] ↦ [-1, 1] normalization, uint8 conversion, and mosaics written as PNG."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from difflab.checkpoint import atomic_write_bytes
from difflab.data.normalize import MinMaxScaler

#: One range for every pixel: 0..255 ↦ [-1, 1] (a per-pixel range would blow up the always-black border).
PIXEL_SCALER = MinMaxScaler(np.array([0.0]), np.array([255.0]))
PAD = 2
PAD_VALUE = 96


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Model-unit images in [-1, 1] → uint8 0..255 (values outside the range are clipped)."""
    return ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


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


def to_pil(mosaic: np.ndarray, scale: int = 1) -> Image.Image:
    """(H, W, C) uint8 → a Pillow image, optionally enlarged with nearest-neighbour pixels."""
    im = Image.fromarray(mosaic[..., 0] if mosaic.shape[2] == 1 else mosaic)
    return im.resize((im.width * scale, im.height * scale), Image.NEAREST) if scale > 1 else im


def save_png(mosaic: np.ndarray, path: Path, scale: int = 2) -> None:
    """Write a mosaic as PNG, atomically."""
    buf = io.BytesIO()
    to_pil(mosaic, scale).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
