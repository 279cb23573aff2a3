"""What a run knows about its training data: item shape, normalization, classes, source and fingerprint."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from difflab.data.normalize import MinMaxScaler
from difflab.errors import UserError


@dataclass
class DataInfo:
    """Facts about the training data a run needs to rebuild its model and outputs.

    `shape` is one item's shape: (D,) for points, (C, H, W) for images. `scaler` maps data units
    to the [-1, 1] range the model sees (per column for points, one range for pixels).
    """

    shape: tuple[int, ...]
    scaler: MinMaxScaler
    class_names: list[str] | None
    kind: str | None = None  # the kind of data (`difflab.kinds`); None in runs written before kinds were recorded
    columns: list[str] | None = None  # the data's own column names (points from a CSV header or a DataFrame)

    @property
    def num_classes(self) -> int:
        return len(self.class_names) if self.class_names else 0

    def to_dict(self) -> dict[str, Any]:
        d = {"shape": list(self.shape), "scaler": self.scaler.to_dict(), "class_names": self.class_names}
        optional = {"kind": self.kind, "columns": self.columns}
        return d | {k: v for k, v in optional.items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataInfo:
        """Rebuild from config.json, refusing shapes and scalers that cannot belong to a run."""
        shape = tuple(int(k) for k in d["shape"])
        if not 1 <= len(shape) <= 3 or not all(1 <= k <= 1 << 16 for k in shape):
            raise ValueError(f"item shape {list(shape)} does not have 1 to 3 sizes in 1..65536")
        scaler = MinMaxScaler.from_dict(d["scaler"])
        width = shape[0] if len(shape) == 1 else 1
        if scaler.lo.shape != (width,) or scaler.hi.shape != (width,):
            raise ValueError(f"scaler has {scaler.lo.shape} bounds for items of shape {list(shape)}")
        names = d.get("class_names")
        if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) for n in names)):
            raise ValueError("class_names must be a list of strings")
        kind = d.get("kind")
        if kind is not None and not isinstance(kind, str):
            raise ValueError("kind must be a string")
        columns = d.get("columns")
        if columns is not None and (not isinstance(columns, list) or not all(isinstance(c, str) for c in columns)):
            raise ValueError("columns must be a list of strings")
        return cls(shape, scaler, names, kind, columns)


def fingerprint(items: np.ndarray, labels: np.ndarray | None) -> str:
    """SHA-256 of the items' dtype, shape and bytes, and of the labels: changes whenever the data does."""
    digest = hashlib.sha256()
    for part in (items, labels):
        if part is None:
            digest.update(b"none")
            continue
        arr = np.ascontiguousarray(part)
        digest.update(f"{arr.dtype.str}{arr.shape}".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


@dataclass
class DataSource:
    """Where a run's data came from: the spec (a built-in name, an image set, an absolute path, or "array"),
    how many items it had, the fingerprint of those items, and whether the run keeps its own copy."""

    spec: str
    n_items: int
    fingerprint: str
    stored: bool

    def to_dict(self) -> dict[str, Any]:
        return {"spec": self.spec, "n_items": self.n_items, "fingerprint": self.fingerprint, "stored": self.stored}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataSource:
        n, digest = int(d["n_items"]), str(d["fingerprint"])
        if n < 1 or len(digest) != 64:
            raise ValueError("data source needs n_items ≥ 1 and a 64-character fingerprint")
        return cls(str(d["spec"]), n, digest, bool(d["stored"]))

    def check(self, other: DataSource, where: str) -> None:
        """Refuse to continue a run on data other than the data it was trained on."""
        if other.fingerprint != self.fingerprint:
            raise UserError(
                f"{where} was trained on other data than {other.spec} holds now ({self.n_items} items then, "
                f"{other.n_items} now, fingerprints differ); continuing would mix the two: use another output folder"
            )


@dataclass
class TrainingSet:
    """Normalized training items (N, *shape) in [-1, 1], their labels (or None), the data facts and source."""

    x: torch.Tensor
    labels: np.ndarray | None
    info: DataInfo
    source: DataSource
