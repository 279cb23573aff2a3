"""An image run's train and held-out images: the fixed split, the run's own copy, and the fingerprint check."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from difflab.data.image_source import SPLIT_SEED, TEST_FRACTION, load_image_set
from difflab.data.images import ImageData, stratified_split
from difflab.data.training_set import fingerprint
from difflab.errors import UserError

if TYPE_CHECKING:
    from difflab.kind import RunView


def split(data: ImageData) -> tuple[ImageData, ImageData]:
    """The fixed stratified train/test split of an image set without official parts (10% held out)."""
    train, test = stratified_split(data.labels, TEST_FRACTION, SPLIT_SEED)
    return data.subset(train), data.subset(test)


def image_copy(arrays: dict[str, np.ndarray]) -> ImageData:
    """The images a run keeps in data.npz (runs trained from arrays)."""
    try:
        return ImageData(arrays["images"], arrays["labels"].astype(np.int64), [str(s) for s in arrays["class_names"]])
    except (KeyError, ValueError, TypeError) as e:
        raise UserError(f"the run's image copy is damaged ({e})") from None


def image_sets(run: RunView) -> tuple[ImageData, ImageData]:
    """(train, test) images of a run, checked against the fingerprint recorded when it trained."""
    source = run.source
    if source.stored:
        data = image_copy(run.data_copy())
        found = fingerprint(data.images, data.labels)
        train, test = split(data)
    else:
        train, test = load_image_set(source.spec, "train"), load_image_set(source.spec, "test")
        found = fingerprint(train.images, train.labels)
    if found != source.fingerprint:
        raise UserError(
            f"{source.spec} no longer holds the images this run trained on (fingerprint differs); "
            "evaluation and figures need the same images"
        )
    return train, test
