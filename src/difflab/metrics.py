"""Distances between point sets: energy distance, k-NN precision and recall against a reference, a 1-NN label."""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: Rows of a pairwise-distance block: 256 × 5,000 float64 distances (10 MB) stay in the CPU's cache for the sums
#: and comparisons that follow; blocks of 2,048 rows made `difflab evaluate` slower (commit eb0f352).
CHUNK = 256


def _mean_pairwise_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """E‖a - b‖ over all pairs, in chunks so 10k x 10k needs little memory."""
    total = 0.0
    for start in range(0, len(a), CHUNK):
        total += float(torch.cdist(a[start : start + CHUNK], b).sum())
    return total / (len(a) * len(b))


def energy_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """D² = 2E‖X-Y‖ - E‖X-X'‖ - E‖Y-Y'‖ (Székely & Rizzo 2013, eq. 2), V-statistic form.

    The V-statistic (pairs with themselves included) is ≥ 0 and biased upwards by O(1/n), so two
    independent samples of the same distribution give a small positive "floor".
    """
    x, y = x.double(), y.double()
    return 2 * _mean_pairwise_distance(x, y) - _mean_pairwise_distance(x, x) - _mean_pairwise_distance(y, y)


def _floor(self_distance: float, m: int, n: int) -> float:
    """E[D̂] between independent draws of n and m points of one distribution, from the m-point draw's V-statistic
    self term: δ(1/n + 1/m) with δ = E‖X - X'‖.

    The V-statistic's self terms average n - 1 distances and one zero per point, so E[D̂] = 2δ - (1 - 1/n)δ -
    (1 - 1/m)δ (Székely & Rizzo 2013, eq. 2, with its V-statistic's bias); δ is the m-point draw's U-statistic,
    which strays under 1% between draws of 5,000 points. A measured floor is spread by 48-76% of its mean, so a
    mean of 4 measured floors strays 0.5-1.6× (5th-95th percentile, eight sets; benchmarks/RESULTS-teachers.md,
    "The floor's own noise").
    """
    return self_distance * m / (m - 1) * (1 / n + 1 / m)


def expected_floor(truth: torch.Tensor, n: int) -> float:
    """The mean energy distance of an independent n-point draw of the same data against `truth` (see _floor)."""
    truth = truth.double()
    return _floor(_mean_pairwise_distance(truth, truth), len(truth), n)


def standardize_like(reference: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Scale every set by the reference's per-dimension mean and std, so no dimension dominates."""
    mean, std = reference.mean(0), reference.std(0).clamp_min(1e-12)
    return [(t - mean) / std for t in (reference, *others)]


def _self_terms(x: torch.Tensor, k: int) -> tuple[float, torch.Tensor]:
    """(E‖x - x'‖ over all pairs, the k-NN radius of each point), from one pass over the pairwise distances."""
    total, radii = 0.0, torch.empty(len(x), dtype=x.dtype)
    for start in range(0, len(x), CHUNK):
        d = torch.cdist(x[start : start + CHUNK], x)
        total += float(d.sum())
        radii[start : start + len(d)] = d.topk(k + 1, dim=1, largest=False).values[:, -1]
    return total / len(x) ** 2, radii


@dataclass
class Reference:
    """A draw of the data (standardized) with what every comparison against it needs, computed once."""

    points: torch.Tensor
    self_distance: float  # E‖T - T'‖
    radii: torch.Tensor  # k-NN radii, for precision

    @classmethod
    def of(cls, points: torch.Tensor, k: int) -> Reference:
        points = points.double()
        self_distance, radii = _self_terms(points, k)
        return cls(points, self_distance, radii)

    def expected_floor(self, n: int) -> float:
        """The mean energy distance of an independent n-point draw of the same data against this one."""
        return _floor(self.self_distance, len(self.points), n)

    def compare(self, samples: torch.Tensor, k: int) -> tuple[float, float, float]:
        """(energy distance, precision, recall) of `samples` against this reference, in two passes over the pairs.

        The samples' own distances give their E‖S - S'‖ and k-NN radii, and one pass over sample-reference pairs
        gives the cross term, precision and recall together (tests/reference_metrics.py computes each figure on
        its own, as the papers define it, to check this).
        """
        samples = samples.double()
        self_s, radii_s = _self_terms(samples, k)
        cross, inside = 0.0, 0
        covered = torch.zeros(len(self.points), dtype=torch.bool)
        for start in range(0, len(samples), CHUNK):
            d = torch.cdist(samples[start : start + CHUNK], self.points)
            cross += float(d.sum())
            inside += int((d <= self.radii[None, :]).any(dim=1).sum())
            covered |= (d <= radii_s[start : start + len(d), None]).any(dim=0)
        distance = 2 * cross / (len(samples) * len(self.points)) - self_s - self.self_distance
        return distance, inside / len(samples), float(covered.double().mean())


def nearest_neighbour_labels(points: torch.Tensor, reference: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The label of each point's nearest reference point (Euclidean): a 1-NN classifier, in chunks."""
    out = torch.empty(len(points), dtype=labels.dtype)
    for start in range(0, len(points), CHUNK):
        part = points[start : start + CHUNK].double()
        out[start : start + len(part)] = labels[torch.cdist(part, reference.double()).argmin(dim=1)]
    return out
