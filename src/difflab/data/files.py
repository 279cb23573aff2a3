"""User point data from CSV or .npy files, checked so that every problem gets one clear message."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from difflab.data.toy import PointData
from difflab.errors import UserError, setting, short
from difflab.limits import require_memory

LABEL_COLUMN = "label"
MAX_COLUMNS = 1 << 16


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _as_int(text: str) -> int | None:
    """The integer a plain ASCII label like "7" or "-2" spells, else None ("²", "--5" and "x" are names)."""
    stripped = text.strip()
    if stripped.isascii() and stripped.removeprefix("-").isdecimal():
        return int(stripped)
    return None


def labels_to_ints(raw: list[str]) -> tuple[np.ndarray, list[str]]:
    """Map label strings to 0..K-1; integer labels keep their numeric order, before any other names."""

    def order(name: str) -> tuple[int, int, str]:
        number = _as_int(name)
        return (0, number, name) if number is not None else (1, 0, name)

    names = sorted(set(raw), key=order)
    index = {name: k for k, name in enumerate(names)}
    return np.array([index[s] for s in raw], dtype=np.int64), names


def class_index(names: list[str], label: object) -> int:
    """The index of a class given by name, or by index when no class name is an integer."""
    text = str(label)
    if text in names:
        return names.index(text)
    numeric_names = any(_as_int(name) is not None for name in names)
    k = _as_int(text)
    if k is not None and not numeric_names and 0 <= k < len(names):
        return k
    raise UserError(f"unknown class {short(text)}; this run's classes are: {', '.join(names)}")


def labels_from(values: Any, n: int) -> tuple[np.ndarray, list[str]]:
    """Class labels given with an array: integers keep their numeric order, anything else is a name."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__"):
        raise UserError(f"labels must be a list or array with one class per item, got {short(values)}")
    raw = np.asarray(values, dtype=object) if not isinstance(values, np.ndarray) else values
    if raw.shape != (n,):
        raise UserError(f"labels must have one entry per item: expected shape ({n},), got {raw.shape}")
    items = raw.tolist()
    for row, value in enumerate(items):
        if value is None or (isinstance(value, float) and not math.isfinite(value)) or not str(value).strip():
            raise UserError(f"labels: item {row} has no class ({short(value)}); every item needs one")
    return labels_to_ints([str(v) for v in items])


def read_csv(path: Path, label_column: str = LABEL_COLUMN) -> PointData:
    """Read a CSV of numbers, header optional; the header column named `label_column` holds class labels, and the
    other header names are kept as the data's column names."""
    try:
        # Python's rows of strings peak at about 23 times the file's bytes (a 10 MB file: 234 MB resident).
        require_memory(25.0 * path.stat().st_size, f"reading {path}")
        with path.open(newline="", encoding="utf-8") as f:
            rows = [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not a text CSV file ({e.reason})") from None
    except csv.Error as e:
        raise UserError(f"{path}: not a readable CSV file ({e})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read the file ({e.strerror or e})") from None
    if not rows:
        raise UserError(f"{path}: the file is empty")
    rows = [[cell.strip() for cell in row] for row in rows]
    header: list[str] | None = None
    if not all(_is_number(c) for c in rows[0]):
        header, rows = rows[0], rows[1:]
        if not rows:
            raise UserError(f"{path}: the file has a header but no data rows")
    width = len(header) if header else len(rows[0])
    for n, row in enumerate(rows, start=2 if header else 1):
        if len(row) != width:
            raise UserError(f"{path}: line {n} has {len(row)} columns, expected {width} (ragged rows)")
    label_col = header.index(label_column) if header and label_column in header else None
    if label_column != LABEL_COLUMN and label_col is None:
        found = f"its columns are {', '.join(header)}" if header else "it has no header"
        raise UserError(f"{path}: no column named {label_column!r} to take labels from; {found}")
    data_cols = [k for k in range(width) if k != label_col]
    if not data_cols:
        raise UserError(f"{path}: no data columns besides '{label_column}'")
    values = np.empty((len(rows), len(data_cols)), dtype=np.float64)
    for n, row in enumerate(rows, start=2 if header else 1):
        for j, k in enumerate(data_cols):
            try:
                values[n - (2 if header else 1), j] = float(row[k])
            except ValueError:
                name = f"column {k + 1}" + (f" ({header[k]!r})" if header else "")
                hint = (
                    f"; if it holds class labels, name it: {setting('label_column', header[k], quoted=True)}"
                    if header and not _is_number(row[k])
                    else ""
                )
                raise UserError(f"{path}: line {n}, {name}: {row[k]!r} is not a number{hint}") from None
    labels, names = (None, None)
    if label_col is not None:
        for n, row in enumerate(rows, start=2):
            if not row[label_col]:
                raise UserError(f"{path}: line {n}: empty '{label_column}'; every row needs a class label")
        labels, names = labels_to_ints([row[label_col] for row in rows])
    return PointData(values, labels, names, [header[k] for k in data_cols] if header else None)


def _check_npy_size(path: Path) -> None:
    """Refuse a .npy file whose header promises more data than the file holds, and a plain array whose data would
    not fit in memory, before reading it (a damaged header is np.load's to report)."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            fmt = np.lib.format
            shape, _, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(f)
            start = f.tell()
        size = path.stat().st_size
    except (OSError, ValueError, SyntaxError, TypeError, AttributeError):
        return
    if dtype.hasobject:
        return
    expected = math.prod(shape) * dtype.itemsize
    if size - start < expected:
        raise UserError(
            f"{path}: truncated .npy file: its header promises shape {shape} ({expected:,} data bytes) but "
            f"{size - start:,} follow"
        )
    require_memory(3.0 * expected, f"reading {path}")


def read_npy(path: Path) -> PointData:
    """Read a .npy array of shape (N, D) (or (N,) as D = 1); never unpickles objects."""
    _check_npy_size(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as e:
        reason = "it holds Python objects, which are never unpickled" if "pickle" in str(e) else str(e).splitlines()[0]
        raise UserError(f"{path}: not a plain numeric .npy array ({reason})") from None
    except (OSError, EOFError) as e:
        reason = getattr(e, "strerror", None) or str(e).splitlines()[0] or type(e).__name__
        raise UserError(f"{path}: cannot read the .npy file ({reason})") from None
    if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
        raise UserError(f"{path}: expected a numeric array, got dtype {getattr(arr, 'dtype', type(arr))}")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise UserError(f"{path}: expected an array of shape (N, D), got shape {arr.shape}")
    return PointData(arr.astype(np.float64))


def validate(data: PointData, source: str) -> PointData:
    """Reject data no model can learn from: too few rows, no columns, NaN or inf."""
    x = data.x
    if x.ndim != 2 or x.shape[1] < 1:
        raise UserError(f"{source}: expected shape (N, D) with D ≥ 1, got {x.shape}")
    if x.shape[0] < 2:
        raise UserError(f"{source}: needs at least 2 rows of data, got {x.shape[0]}")
    if x.shape[1] > MAX_COLUMNS:
        raise UserError(f"{source}: {x.shape[1]} columns; difflab models at most {MAX_COLUMNS} per point")
    bad = ~np.isfinite(x)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        column = f"column {col + 1}" + (f" ({data.columns[col]!r})" if data.columns else "")
        raise UserError(f"{source}: non-finite value {x[row, col]} at row {row + 1}, {column}")
    return data


def read_points(path: Path, label_column: str = LABEL_COLUMN) -> PointData:
    """Read and check a user point file by its extension (.csv, .txt, .npy)."""
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, expected a .csv or .npy file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        data = read_npy(path)
    elif suffix in (".csv", ".txt"):
        data = read_csv(path, label_column)
    else:
        raise UserError(f"{path}: unknown file type {suffix or '(none)'}; use .csv or .npy")
    return validate(data, str(path))
