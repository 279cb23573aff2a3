"""Data as people have it: pandas DataFrames and Series, and nested lists, turned into an array with its column
names and labels. pandas is never imported here; a frame is recognised by what it offers (`columns`, `to_numpy`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from difflab.errors import UserError, setting, short


def is_table(data: Any) -> bool:
    """A pandas DataFrame or Series (or anything shaped like one), or a list or tuple of rows or numbers."""
    frame_like = hasattr(data, "to_numpy") and (hasattr(data, "columns") or hasattr(data, "name"))
    return frame_like or isinstance(data, (list, tuple))


def from_table(data: Any, labels: Any, label_column: str) -> tuple[np.ndarray, Any, list[str] | None]:
    """(numbers (N, D), labels or None, column names or None) of a frame, a series or a list of rows.

    A frame's column `label_column`, when it has one, holds the labels; every other column must hold numbers.
    """
    if isinstance(data, (list, tuple)):
        try:
            array = np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError):
            raise UserError(f"a list of data must hold numbers (rows of equal length), got {short(data)}") from None
        return array, labels, None
    if not hasattr(data, "columns"):  # a Series: one column, named by the series
        name = getattr(data, "name", None)
        return _numbers(data.to_numpy(), [str(name) if name is not None else "x0"]), labels, _names([name])
    columns = [str(c) for c in data.columns]
    if label_column in columns:
        if labels is not None:
            raise UserError(f"labels given twice: as labels= and as the frame's column {label_column!r}; keep one")
        labels = data[label_column].to_numpy()
        data = data.drop(columns=[label_column])
        columns = [str(c) for c in data.columns]
    if not columns:
        raise UserError(f"the frame has no data columns besides {label_column!r}")
    return _numbers(data.to_numpy(), columns), labels, _names(list(data.columns))


def _names(columns: list[Any]) -> list[str] | None:
    """The column names as strings; None when they are only pandas' default 0, 1, 2, ..."""
    if all(isinstance(c, (int, np.integer)) for c in columns) or all(c is None for c in columns):
        return None
    return [str(c) for c in columns]


def _numbers(values: np.ndarray, columns: list[str]) -> np.ndarray:
    """The values as float64, or a UserError naming the first column that holds something else."""
    values = values.reshape(len(values), -1)
    for k, name in enumerate(columns):
        try:
            values[:, k].astype(np.float64)
        except (TypeError, ValueError):
            example = next((v for v in values[:, k] if not _is_number(v)), values[0, k])
            raise UserError(
                f"column {name!r} holds {short(example)}, not numbers; if it holds class labels, name it: "
                f"{setting('label_column', name, quoted=True)}"
            ) from None
    return values.astype(np.float64)


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
