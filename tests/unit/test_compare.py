"""How `difflab compare` and the report write a figure with its spread."""

from __future__ import annotations

import math

import pytest

from difflab.evaluation import mean_and_spread


@pytest.mark.parametrize(
    ("mean", "std", "shown"),
    [
        (0.5669, 0.2964, "0.57 ± 0.30"),
        (0.94241, 0.003729, "0.9424 ± 0.0037"),
        (36198.2, 569.0, "36198 ± 569"),
        (0.998, 0.0, "0.998"),
        (1.25, None, "1.25"),
        (1.25, math.nan, "1.25"),
    ],
)
def test_the_mean_is_rounded_where_its_spread_is(mean: float, std: float | None, shown: str) -> None:
    assert mean_and_spread(mean, std) == shown
