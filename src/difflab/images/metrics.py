"""Image sample quality: class-conditional accuracy and the Fréchet distance in a classifier's feature space."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from difflab.data.images import ImageData
from difflab.images.classifier import TrainedClassifier
from difflab.images.pixels import from_uint8


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (tiny negative eigenvalues → 0)."""
    w, v = np.linalg.eigh(m)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """d² = ‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2(Σ_a Σ_b)^½) between Gaussians fitted to two feature sets.

    Heusel et al. 2017, eq. 6 (Dowson & Landau 1982). Tr((Σ_a Σ_b)^½) is computed in float64 as
    Σ √λ_i over the eigenvalues of the symmetric PSD matrix Σ_a^½ Σ_b Σ_a^½, which has the same
    eigenvalues as Σ_a Σ_b, so no non-symmetric matrix square root is needed.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two feature sets (N, D) with N ≥ 2 and equal D, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = _sqrt_psd(cov_a)
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(root_a @ cov_b @ root_a), 0.0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2.0 * cross)


@dataclass
class ImageQuality:
    """Conditional accuracy of samples, and their Fréchet distance to held-out images next to its floor."""

    classifier_accuracy: float
    conditional_accuracy: float
    frechet: float
    floor: float
    n: int

    @property
    def ratio(self) -> float:
        return self.frechet / self.floor if self.floor > 0 else float("inf")


def image_quality(
    classifier: TrainedClassifier,
    samples: np.ndarray,
    asked: np.ndarray,
    train: ImageData,
    test: ImageData,
    *,
    seed: int = 0,
) -> ImageQuality:
    """Score uint8 `samples` (N, C, H, W), asked to be classes `asked`, against the held-out `test` images.

    The floor is the distance from an equally large random draw of real training images to the
    same held-out set, so both distances carry the same finite-sample bias.
    """
    n = min(len(samples), len(test), len(train))
    rng = np.random.default_rng(seed)
    real = from_uint8(train.images[rng.choice(len(train), n, replace=False)])
    held = from_uint8(test.images[rng.choice(len(test), n, replace=False)])
    generated = from_uint8(samples)
    held_f = classifier.features(held).numpy()
    conditional = float((classifier.predict(generated) == torch.as_tensor(asked)).float().mean())
    return ImageQuality(
        classifier_accuracy=classifier.test_accuracy,
        conditional_accuracy=conditional,
        frechet=frechet_distance(
            classifier.features(generated[rng.choice(len(samples), n, replace=False)]).numpy(), held_f
        ),
        floor=frechet_distance(classifier.features(real).numpy(), held_f),
        n=n,
    )
