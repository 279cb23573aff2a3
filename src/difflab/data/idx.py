"""The IDX file format (LeCun's MNIST format), gzip or plain, and the EMNIST sets stored in it.

IDX: two zero bytes, a type byte, the number of dimensions n, then n big-endian uint32 sizes and
the data in row-major order. EMNIST (Cohen et al. 2017) ships each split as
`emnist-{split}-{train|test}-{images-idx3|labels-idx1}-ubyte[.gz]` plus `emnist-{split}-mapping.txt`
(label → character code). Its images are stored transposed relative to MNIST; we return them upright.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from difflab.data.images import ImageData
from difflab.errors import UserError

IDX_TYPES: dict[int, str] = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
GZIP_MAGIC = b"\x1f\x8b"

EmnistSplit = Literal["byclass", "bymerge", "balanced", "letters", "digits", "mnist"]
EMNIST_SPLITS: tuple[str, ...] = get_args(EmnistSplit)
EmnistPart = Literal["train", "test"]


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when they start with the gzip magic."""
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    raw = path.read_bytes()
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as e:
        raise UserError(f"{path}: truncated or corrupt gzip data ({e})") from None


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX array, checking the magic number and that the data size matches the header exactly."""
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise UserError(f"{path}: truncated IDX file ({len(raw)} bytes; the header alone needs 4)")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES or raw[3] == 0:
        raise UserError(f"{path}: bad magic number 0x{raw[:4].hex()}; not an IDX file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise UserError(f"{path}: truncated IDX header ({len(raw)} bytes; {ndim} dimensions need {header})")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = np.dtype(IDX_TYPES[raw[2]])
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) - header != expected:
        state = "truncated" if len(raw) - header < expected else "too long"
        raise UserError(
            f"{path}: {state}: header says shape {dims} ({expected} data bytes) but {len(raw) - header} follow"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def read_mapping(path: Path) -> dict[int, str]:
    """EMNIST `mapping.txt`: `label code` per line (letters: `label upper lower`) → {label: character}.

    A letters class holds both cases; it is named by its first (upper-case) character.
    """
    if not path.is_file():
        raise UserError(f"{path}: mapping file not found")
    mapping: dict[int, str] = {}
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        cells = line.split()
        try:
            values = [int(c) for c in cells]
        except ValueError:
            raise UserError(f"{path}: line {n}: expected integers, got {line.strip()!r}") from None
        if len(values) not in (2, 3):
            raise UserError(f"{path}: line {n}: expected 'label code' (or 'label upper lower'), got {line.strip()!r}")
        label, code = values[0], values[1]
        if label in mapping:
            raise UserError(f"{path}: line {n}: label {label} mapped twice")
        if not 0 < code < 0x110000:
            raise UserError(f"{path}: line {n}: {code} is not a character code")
        mapping[label] = chr(code)
    if not mapping:
        raise UserError(f"{path}: empty mapping")
    return mapping


def _find(directory: Path, name: str) -> Path:
    """`name` or `name.gz` in `directory` or its `gzip/` subfolder (the layout of the official archive)."""
    for folder in (directory, directory / "gzip"):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise UserError(f"{directory}: no {name}[.gz] (expected the EMNIST IDX files there)")


def emnist_paths(directory: Path, split: str, part: EmnistPart) -> tuple[Path, Path, Path]:
    """Images, labels and mapping file of one EMNIST split and part."""
    if split not in EMNIST_SPLITS:
        raise UserError(f"unknown EMNIST split {split!r}; choose one of {', '.join(EMNIST_SPLITS)}")
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory}: is a file; emnist:PATH names the folder that holds the EMNIST IDX files")
    if not directory.is_dir():
        raise UserError(f"{directory}: EMNIST directory not found")
    prefix = f"emnist-{split}"
    return (
        _find(directory, f"{prefix}-{part}-images-idx3-ubyte"),
        _find(directory, f"{prefix}-{part}-labels-idx1-ubyte"),
        _find(directory, f"{prefix}-mapping.txt"),
    )


def load_emnist(directory: Path, split: str = "balanced", part: EmnistPart = "train") -> ImageData:
    """One EMNIST split, upright, with labels renumbered 0..K-1 in mapping order and named by character."""
    image_path, label_path, mapping_path = emnist_paths(directory, split, part)
    images, labels = read_idx(image_path), read_idx(label_path)
    mapping = read_mapping(mapping_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise UserError(f"{image_path}: expected uint8 images of shape (N, H, W), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise UserError(f"{label_path}: expected uint8 labels of shape (N,), got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise UserError(f"{image_path} holds {len(images)} images but {label_path} holds {len(labels)} labels")
    keys = sorted(mapping)
    unknown = np.setdiff1d(np.unique(labels), keys)
    if len(unknown):
        raise UserError(f"{label_path}: label {int(unknown[0])} is not in {mapping_path}")
    index = np.searchsorted(keys, labels).astype(np.int64)
    upright = np.ascontiguousarray(images.transpose(0, 2, 1))[:, None]
    return ImageData(upright, index, [mapping[k] for k in keys])
