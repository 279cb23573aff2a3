"""Per-dimension affine map of the data to [-1, 1], stored with the run and inverted on output."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MinMaxScaler:
    """x ↦ 2 (x - lo) / (hi - lo) - 1 per column; a constant column maps to 0."""

    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> MinMaxScaler:
        return cls(x.min(axis=0).astype(np.float64), x.max(axis=0).astype(np.float64))

    @property
    def _span(self) -> np.ndarray:
        span = self.hi - self.lo
        return np.where(span > 0, span, 1.0)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return 2.0 * (x - self.lo) / self._span - 1.0

    def inverse(self, y: np.ndarray) -> np.ndarray:
        return (y + 1.0) / 2.0 * self._span + self.lo

    def to_dict(self) -> dict[str, list[float]]:
        return {"lo": self.lo.tolist(), "hi": self.hi.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, list[float]]) -> MinMaxScaler:
        return cls(np.asarray(d["lo"], dtype=np.float64), np.asarray(d["hi"], dtype=np.float64))
