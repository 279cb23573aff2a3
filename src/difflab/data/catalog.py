"""The built-in data by name: what exists, and a fresh draw of it."""

from __future__ import annotations

from difflab.data.image_source import IMAGE_SETS
from difflab.data.toy import DATASETS, PointData, builtin
from difflab.errors import UserError, short
from difflab.limits import check_number


def datasets() -> dict[str, str]:
    """Every built-in dataset and image set, with a one-line description."""
    return {**{name: description for name, (_, description) in DATASETS.items()}, **IMAGE_SETS}


def dataset(name: str, n: int = 10_000, seed: int = 0) -> PointData:
    """`n` fresh i.i.d. points of a built-in point dataset (x in data units, labels and class names if any)."""
    if not isinstance(name, str) or name not in DATASETS:
        raise UserError(f"unknown dataset {short(name)}; built-in point sets: {', '.join(DATASETS)}")
    n = check_number("n", n)
    return builtin(name, n, check_number("seed", seed))
