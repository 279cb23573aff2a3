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


def data_title(spec: str) -> str:
    """How figures name a run's data: a built-in name as it is, a file or folder by its own name.

    A figure is shared and committed; the folders of the machine that drew it are nobody else's business
    ("/home/me/data/spiral.csv" is titled "spiral.csv", "emnist:/data/emnist:balanced" "emnist:emnist:balanced").
    """
    return ":".join(Path(part).name if "/" in part or "\\" in part else part for part in spec.split(":"))
