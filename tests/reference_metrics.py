"""k-NN precision and recall computed the plain way, figure by figure, as Kynkäänniemi et al. 2019 define them:
the independent reference `difflab.metrics.Reference.compare` (one fused pass) is checked against."""

from __future__ import annotations

import torch

#: Rows of a pairwise-distance block (bounds memory; any size gives the same figures).
BLOCK = 512


def knn_radii(points: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each point to its k-th nearest other point of the same set."""
    if not 1 <= k < len(points):
        raise ValueError(f"k must be in 1..{len(points) - 1}, got {k}")
    radii = torch.empty(len(points), dtype=points.dtype)
    for start in range(0, len(points), BLOCK):
        d = torch.cdist(points[start : start + BLOCK], points)
        radii[start : start + len(d)] = d.kthvalue(k + 1, dim=1).values  # the 1st nearest is the point itself
    return radii


def coverage(queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> float:
    """Fraction of `queries` inside at least one ball (centre, radius): ‖q - c‖ ≤ r."""
    inside = 0
    for start in range(0, len(queries), BLOCK):
        d = torch.cdist(queries[start : start + BLOCK], centres)
        inside += int((d <= radii[None, :]).any(dim=1).sum())
    return inside / len(queries)


def precision_recall(samples: torch.Tensor, data: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """k-NN precision and recall (Kynkäänniemi et al. 2019, eq. 1-2).

    Precision: the fraction of samples inside the union of the data's k-NN balls (are samples on the data's
    support?). Recall: the fraction of data inside the union of the samples' k-NN balls (is all of the data
    covered?). Both are 1 for a perfect model up to finite-sample effects; compare with the same numbers for
    a fresh draw of the data.
    """
    samples, data = samples.double(), data.double()
    precision = coverage(samples, data, knn_radii(data, k))
    recall = coverage(data, samples, knn_radii(samples, k))
    return precision, recall
