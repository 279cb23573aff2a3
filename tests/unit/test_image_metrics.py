"""Fréchet distance against its closed form and scipy's matrix square root; the classifier learns digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import linalg

from difflab.data.image_source import load_image_set
from difflab.images.classifier import train_classifier
from difflab.images.metrics import frechet_distance, image_quality
from difflab.images.pixels import from_uint8


def test_frechet_closed_form_for_diagonal_gaussians() -> None:
    rng = np.random.default_rng(0)
    n = 200_000
    a = rng.normal([0.0, 1.0, 0.0], [1.0, 2.0, 0.5], size=(n, 3))
    b = rng.normal([1.0, 1.0, 0.0], [3.0, 2.0, 0.5], size=(n, 3))
    # d² = Σ(μa-μb)² + Σ(σa - σb)² for diagonal covariances
    assert frechet_distance(a, b) == pytest.approx(1.0 + 4.0, rel=0.01)


def test_frechet_matches_scipy_sqrtm() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(300, 8)) @ rng.normal(size=(8, 8))
    b = rng.normal(size=(300, 8)) @ rng.normal(size=(8, 8)) + 0.5
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(ca @ cb).real
    expected = ((a.mean(0) - b.mean(0)) ** 2).sum() + np.trace(ca + cb - 2 * covmean)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-8)
    assert abs(frechet_distance(a, a)) < 1e-8


def test_frechet_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="feature sets"):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))


def test_classifier_and_quality_on_real_digits() -> None:
    train, test = load_image_set("digits", "train"), load_image_set("digits", "test")
    clf = train_classifier(train, test, epochs=4, batch_size=64, lr=3e-3, seed=0)
    assert clf.test_accuracy > 0.85  # 10 classes: chance is 0.1
    q = image_quality(clf, test.images, test.labels, train, test, seed=0)  # real images judged as "samples"
    assert q.conditional_accuracy == pytest.approx(clf.test_accuracy)
    assert q.frechet < 1e-6 < q.floor  # the held-out set against itself vs a different draw of real digits
    noise = np.random.default_rng(0).integers(0, 256, test.images.shape, dtype=np.uint8)
    assert image_quality(clf, noise, test.labels, train, test).frechet > 10 * q.floor
    assert clf.features(from_uint8(test.images[:5])).shape == (5, 64) and isinstance(
        clf.predict(from_uint8(test.images[:5])), torch.Tensor
    )
