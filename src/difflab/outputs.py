"""Output files: paths checked before any work is done (so minutes of sampling are never lost to a typo), and
pictures written as PNG."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from difflab.checkpoint import atomic_write_bytes
from difflab.errors import UserError

if TYPE_CHECKING:
    from PIL import Image


def prepare_output(path: Path, suffixes: tuple[str, ...], what: str) -> Path:
    """Refuse an output that cannot be written (wrong extension, a directory, an unwritable folder), and
    create its missing parent folders, all before the work that produces it."""
    if path.suffix.lower() not in suffixes:
        raise UserError(f"{path}: {what} are written as {' or '.join(suffixes)}; name the file accordingly")
    if path.is_dir():
        raise UserError(f"{path}: is a directory; give a file name ending in {' or '.join(suffixes)}")
    prepare_folder(path.parent)
    return path


def refuse_file_on_the_way(folder: Path) -> None:
    """A UserError when `folder`, or the first of its parents that exists, is a file rather than a folder."""
    for parent in [folder, *folder.parents]:
        if parent.exists() and not parent.is_dir():
            if parent == folder:
                raise UserError(f"{folder}: is a file, not a folder; choose another path")
            raise UserError(f"{parent}: is a file, so {folder} cannot be a folder")
        if parent.exists():
            return


def prepare_folder(folder: Path) -> Path:
    """Create `folder` if needed and check that files can be created in it."""
    refuse_file_on_the_way(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".difflab-probe.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise UserError(f"cannot write to {folder} ({e.strerror or e})") from None
    return folder


def to_pil(picture: np.ndarray, scale: int = 1) -> Image.Image:
    """(H, W) or (H, W, C) uint8 → a Pillow image, optionally enlarged with nearest-neighbour pixels."""
    from PIL import Image

    image = Image.fromarray(picture[..., 0] if picture.ndim == 3 and picture.shape[2] == 1 else picture)
    return image.resize((image.width * scale, image.height * scale), Image.NEAREST) if scale > 1 else image


def save_png(picture: np.ndarray, path: Path, scale: int = 2) -> None:
    """Write an (H, W) or (H, W, C) uint8 picture as PNG, atomically, each pixel enlarged to `scale` × `scale`."""
    buf = io.BytesIO()
    to_pil(picture, scale).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
