"""Resolve a `--data` string to points: a built-in dataset name or a file path."""

from __future__ import annotations

from pathlib import Path

from difflab.data.files import LABEL_COLUMN, read_points
from difflab.data.toy import DATASETS, PointData, builtin
from difflab.errors import UserError


def load_points(spec: str, n: int, seed: int, label_column: str = LABEL_COLUMN) -> PointData:
    """Built-in name → n fresh i.i.d. points from `seed`; otherwise read the file at `spec`."""
    if spec in DATASETS:
        return builtin(spec, n, seed)
    path = Path(spec)
    if path.suffix == "" and not path.exists():
        raise UserError(f"unknown dataset {spec!r}; built-in: {', '.join(DATASETS)}, or a .csv/.npy path")
    return read_points(path, label_column)
