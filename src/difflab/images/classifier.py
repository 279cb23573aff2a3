"""A small CNN trained on the real training images: judge of class-conditional samples and feature extractor.

Trained from scratch in seconds on CPU, so evaluation needs no downloaded weights. Its
penultimate layer (64 numbers) is the feature space of the Fréchet distance, in the spirit of
FID (Heusel et al. 2017) with a network that knows this data instead of ImageNet.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from difflab.data.images import ImageData
from difflab.images.pixels import from_uint8

FEATURES = 64


class CharClassifier(nn.Module):
    """Two conv-conv-pool stages, pooled to 3×3, then 64 features and a linear read-out."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 48, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(3),
            nn.Flatten(),
            nn.Linear(48 * 9, FEATURES),
        )
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(0.3), nn.Linear(FEATURES, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (before the ReLU, closer to Gaussian) of images in [-1, 1]."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


@dataclass
class TrainedClassifier:
    """The network and its accuracy on the held-out images."""

    model: CharClassifier
    test_accuracy: float

    @torch.no_grad()
    def predict(self, x: torch.Tensor, batch: int = 1000) -> torch.Tensor:
        """Class indices for images in [-1, 1]."""
        self.model.eval()
        return torch.cat([self.model(x[i : i + batch]).argmax(1) for i in range(0, len(x), batch)])

    @torch.no_grad()
    def features(self, x: torch.Tensor, batch: int = 1000) -> torch.Tensor:
        """Feature vectors (N, 64) for images in [-1, 1]."""
        self.model.eval()
        return torch.cat([self.model.features(x[i : i + batch]) for i in range(0, len(x), batch)])


def train_classifier(
    train: ImageData,
    test: ImageData,
    *,
    epochs: int = 8,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
) -> TrainedClassifier:
    """Adam with a cosine-decayed rate and random shifts of ±H/14 pixels (so it judges shape, not position).

    Seeded by `seed` through torch's global RNG (dropout, initialization), which is restored afterwards.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = CharClassifier(train.shape[0], len(train.class_names))
        x, y = from_uint8(train.images), torch.as_tensor(train.labels)
        reach = train.shape[1] // 14
        steps = epochs * ((len(x) + batch_size - 1) // batch_size)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=gen)
            for start in range(0, len(x), batch_size):
                idx = order[start : start + batch_size]
                shift = torch.randint(-reach, reach + 1, (2,), generator=gen).tolist()
                batch = torch.roll(x[idx], shifts=shift, dims=(2, 3))
                loss = F.cross_entropy(model(batch), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    trained = TrainedClassifier(model, float("nan"))
    trained.test_accuracy = accuracy(trained, from_uint8(test.images), torch.as_tensor(test.labels))
    return trained


def accuracy(classifier: TrainedClassifier, x: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of images classified as their label."""
    return float((classifier.predict(x) == labels).float().mean())
