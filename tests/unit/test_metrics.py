"""Distances between point sets against brute-force numpy references written out here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from difflab.data.toy import builtin
from difflab.metrics import Reference, energy_distance, expected_floor, standardize_like
from tests.reference_metrics import knn_radii, precision_recall


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))


def test_energy_distance_is_the_v_statistic_of_szekely_and_rizzo() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(70, 3)), rng.normal(0.3, 1.2, size=(50, 3))
    expected = 2 * _pairwise(x, y).mean() - _pairwise(x, x).mean() - _pairwise(y, y).mean()
    assert energy_distance(torch.as_tensor(x), torch.as_tensor(y)) == pytest.approx(
        expected, rel=1e-8
    )  # cdist uses matrix products


def test_the_expected_floor_is_the_mean_of_many_measured_floors() -> None:
    """δ(1/n + 1/m) against 400 measured floors of moons at n = 200 against m = 300: the mean of four measured
    floors strays far further from it than the expectation's own error."""
    measured, expected = [], []
    for j in range(400):
        truth, other = builtin("moons", 300, 2 * j).x, builtin("moons", 200, 2 * j + 1).x
        t, o = standardize_like(torch.as_tensor(truth), torch.as_tensor(other))
        reference = Reference.of(t, 10)
        measured.append(reference.compare(o, 10)[0])
        expected.append(reference.expected_floor(200))
    measured_mean, standard_error = np.mean(measured), np.std(measured, ddof=1) / np.sqrt(len(measured))
    assert abs(np.mean(expected) - measured_mean) < 3 * standard_error
    assert np.std(expected) / np.mean(expected) < 0.03  # one truth's expectation is already close
    assert expected_floor(t, 200) == pytest.approx(expected[-1], rel=1e-9)  # without a Reference, the same
    fours = np.reshape(measured, (-1, 4)).mean(axis=1) / measured_mean
    assert fours.max() - fours.min() > 0.5  # the mean of 4 measured floors, as evaluate took before, spreads widely


def test_knn_radius_is_the_distance_to_the_kth_other_point() -> None:
    x = np.random.default_rng(1).normal(size=(40, 2))
    d = _pairwise(x, x)
    for k in (1, 3):
        expected = np.sort(d, axis=1)[:, k]  # column 0 is the point itself
        np.testing.assert_allclose(knn_radii(torch.as_tensor(x), k).numpy(), expected, rtol=1e-8)


def test_precision_and_recall_follow_their_definition() -> None:
    rng = np.random.default_rng(2)
    data = rng.normal(size=(60, 2))
    samples = np.concatenate([rng.normal(size=(30, 2)), rng.normal(6.0, 0.1, size=(10, 2))])  # a quarter off-data
    k = 3
    data_r = np.sort(_pairwise(data, data), axis=1)[:, k]
    sample_r = np.sort(_pairwise(samples, samples), axis=1)[:, k]
    precision = (_pairwise(samples, data) <= data_r[None, :]).any(1).mean()
    recall = (_pairwise(data, samples) <= sample_r[None, :]).any(1).mean()
    p, r = precision_recall(torch.as_tensor(samples), torch.as_tensor(data), k)
    assert (p, r) == (pytest.approx(precision), pytest.approx(recall))
    assert p <= 0.75 + 1e-9  # the off-data cluster lies in no data ball


def test_precision_sees_blur_that_moves_the_energy_distance_little() -> None:
    """Samples with 4% of points spread between the moons: precision drops by about that share."""
    rng = np.random.default_rng(3)
    truth, other = (torch.as_tensor(builtin("moons", 3000, s).x) for s in (1, 2))
    blurred = builtin("moons", 3000, 4).x
    blurred[:120] = rng.uniform([-1.0, -0.5], [2.0, 1.0], size=(120, 2))
    t, o, b = standardize_like(truth, other, torch.as_tensor(blurred))
    p_floor, _ = precision_recall(o, t, k=10)
    p_blur, _ = precision_recall(b, t, k=10)
    assert p_floor > 0.99 and p_floor - p_blur > 0.025


def test_a_reference_compares_as_the_separate_functions_do() -> None:
    """`Reference.compare` shares work between the three figures; it must give exactly what each function gives."""
    rng = np.random.default_rng(4)
    truth, samples = torch.as_tensor(rng.normal(size=(900, 3))), torch.as_tensor(rng.normal(0.1, 1.1, size=(700, 3)))
    distance, precision, recall = Reference.of(truth, 5).compare(samples, 5)
    assert distance == pytest.approx(energy_distance(samples, truth), rel=1e-9)
    assert (precision, recall) == pytest.approx(precision_recall(samples, truth, 5))


@pytest.mark.parametrize(
    ("ratio", "precision", "recall", "is_sharp", "words"),
    [
        (1.2, 0.992, 0.99, True, "close to the data"),
        (1.6, 0.995, 0.99, False, "not yet close to the data —"),
        (1.2, 0.985, 0.99, False, "close in distribution, but blurred"),
        (1.2, 0.995, 0.90, True, "close in distribution, but missing some data"),
    ],
)
def test_sharp_is_the_verdicts_bound_on_ratio_and_precision(
    ratio: float, precision: float, recall: float, is_sharp: bool, words: str
) -> None:
    from difflab.evaluation import Stat
    from difflab.points.evaluation import sharp, verdict

    floors = {"precision_floor": Stat([0.998, 0.998]), "recall_floor": Stat([0.998, 0.998])}
    m = {"ratio": Stat([ratio, ratio]), "precision": Stat([precision] * 2), "recall": Stat([recall] * 2)} | floors
    assert sharp(m) is is_sharp
    assert verdict(m).startswith(f"verdict: {words}")
