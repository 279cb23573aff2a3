"""Built-in point datasets, drawn i.i.d. from a seed.

scikit-learn's `make_moons`/`make_circles` place points evenly along the curves; such a sample is
far closer to another of its kind than two i.i.d. samples are, which would fake a low evaluation
floor. Here every point's position along its curve is drawn at random, with the series'
parameters (moons noise 0.01, circles factor 0.1 and noise 0.01).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from difflab.limits import require_memory


@dataclass
class PointData:
    """Points (N, D) float64 with optional integer labels (N,) and their class names."""

    x: np.ndarray
    labels: np.ndarray | None = None
    class_names: list[str] | None = None
    columns: list[str] | None = None  # the data's own column names (a CSV header, a DataFrame), if it has them

    def subset(self, index: np.ndarray) -> PointData:
        """The rows at `index`, with their labels."""
        labels = None if self.labels is None else self.labels[index]
        return PointData(self.x[index], labels, self.class_names, self.columns)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def moons(n: int, seed: int, noise: float = 0.01) -> PointData:
    """Two interleaving half circles (as sklearn's make_moons, but i.i.d. along the arcs)."""
    rng = _rng(seed)
    label = rng.integers(0, 2, n)
    theta = rng.uniform(0.0, math.pi, n)
    x = np.where(label == 0, np.cos(theta), 1.0 - np.cos(theta))
    y = np.where(label == 0, np.sin(theta), 0.5 - np.sin(theta))
    pts = np.stack([x, y], axis=1) + rng.normal(0.0, noise, (n, 2))
    return PointData(pts, label, ["upper", "lower"])


def circles(n: int, seed: int, factor: float = 0.1, noise: float = 0.01) -> PointData:
    """A circle of radius 1 around one of radius `factor` (as make_circles, i.i.d. angles)."""
    rng = _rng(seed)
    label = rng.integers(0, 2, n)
    theta = rng.uniform(0.0, 2 * math.pi, n)
    radius = np.where(label == 0, 1.0, factor)
    pts = np.stack([radius * np.cos(theta), radius * np.sin(theta)], axis=1) + rng.normal(0.0, noise, (n, 2))
    return PointData(pts, label, ["outer", "inner"])


def parabola(n: int, seed: int) -> PointData:
    """The series' parabola: x ~ N(0, 4²), y ~ N(x²/4, 1)."""
    rng = _rng(seed)
    x = rng.normal(0.0, 4.0, n)
    y = rng.normal(x**2 / 4.0, 1.0)
    return PointData(np.stack([x, y], axis=1))


def complex_set(n: int, seed: int) -> PointData:
    """The series' 4-column "complex" set: moons shifted by +15 beside circles, [moons + 15, circles]."""
    a = moons(n, seed)
    b = circles(n, seed + 1)
    return PointData(np.concatenate([a.x + 15.0, b.x], axis=1))


#: Centre of the two moons' curves; subtracted so both generators are overlaid around the origin.
MOONS_CENTRE = np.array([0.5, 0.25])


def circles_vs_moons(n: int, seed: int) -> PointData:
    """The series' labelled two-class set: label 0 = a circles point, 1 = a moons point, overlaid.

    The moons are centred on the origin like the circles. Uncentred, the upper moon is exactly the
    upper half of the outer circle, so a point's class could not be told from where it lies: a
    nearest-neighbour classifier gets only 81% of fresh data right. Centred, the curves only cross,
    and it gets 99.5% (both measured on 4,000 points against 20,000).
    """
    rng = _rng(seed)
    label = rng.integers(0, 2, n)
    c = circles(n, seed + 1).x
    m = moons(n, seed + 2).x - MOONS_CENTRE
    return PointData(np.where(label[:, None] == 0, c, m), label, ["circles", "moons"])


def eight_gaussians(n: int, seed: int, radius: float = 2.0, std: float = 0.1) -> PointData:
    """Eight Gaussians on a circle; the label is the component."""
    rng = _rng(seed)
    label = rng.integers(0, 8, n)
    angle = label * (2 * math.pi / 8)
    centres = radius * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return PointData(centres + rng.normal(0.0, std, (n, 2)), label, [f"g{k}" for k in range(8)])


def swiss_roll(n: int, seed: int, noise: float = 0.1) -> PointData:
    """The 2-D Swiss roll: (t cos t, t sin t) with t ~ U(1.5π, 4.5π)."""
    rng = _rng(seed)
    t = rng.uniform(1.5 * math.pi, 4.5 * math.pi, n)
    pts = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) + rng.normal(0.0, noise, (n, 2))
    return PointData(pts)


def checkerboard(n: int, seed: int) -> PointData:
    """Uniform points on the dark squares of a 4x4 checkerboard over [-2, 2]²."""
    rng = _rng(seed)
    x = rng.uniform(-2.0, 2.0, n)
    y = rng.uniform(0.0, 1.0, n) + rng.integers(0, 2, n) * 2.0 - 2.0
    y = y + (np.floor(x) % 2)
    return PointData(np.stack([x, y], axis=1))


DATASETS: dict[str, tuple[Callable[[int, int], PointData], str]] = {
    "moons": (moons, "two interleaving half circles, noise 0.01 (series); labels: which moon"),
    "circles": (
        circles,
        "two concentric circles, factor 0.1, noise 0.01 (series); labels: which circle",
    ),
    "parabola": (parabola, "x ~ N(0, 4²), y ~ N(x²/4, 1) (series)"),
    "complex": (complex_set, "4-D: moons + 15 beside circles (series)"),
    "circles_vs_moons": (
        circles_vs_moons,
        "circles (label 0) and moons (label 1) overlaid (series, Part 2)",
    ),
    "8gaussians": (eight_gaussians, "eight Gaussians on a circle of radius 2; labels: component"),
    "swissroll": (swiss_roll, "2-D Swiss roll"),
    "checkerboard": (checkerboard, "uniform on 8 squares of a 4x4 board"),
}

#: The four datasets of the tutorial series' Part 1, used by the benchmark.
SERIES_DATASETS = ("parabola", "moons", "circles", "complex")


def builtin(name: str, n: int, seed: int) -> PointData:
    """Draw n points of a built-in dataset, once it is clear that they fit in memory (about 200 bytes a point
    while the generators work)."""
    if name not in DATASETS:
        raise KeyError(name)
    require_memory(n * 200.0, f"drawing {n:,} points of {name}")
    return DATASETS[name][0](n, seed)
