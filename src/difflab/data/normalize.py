"""Per-dimension affine map of the data to [-1, 1], stored with the run and inverted on output."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from difflab.errors import UserError


@dataclass(frozen=True)
class MinMaxScaler:
    """x ↦ 2 (x - lo) / (hi - lo) - 1 per column; a constant column maps to 0."""

    lo: np.ndarray
    hi: np.ndarray

    def __post_init__(self) -> None:
        if self.lo.ndim != 1 or self.lo.shape != self.hi.shape or len(self.lo) == 0:
            raise ValueError(f"scaler bounds must be two equal-length lists, got {self.lo.shape} and {self.hi.shape}")
        if not (np.isfinite(self.lo).all() and np.isfinite(self.hi).all() and (self.lo <= self.hi).all()):
            raise ValueError("scaler bounds must be finite with lo ≤ hi")

    @classmethod
    def fit(cls, x: np.ndarray, source: str = "data") -> MinMaxScaler:
        """Fit to columns of `x`; a column whose range overflows float64 is a UserError naming it."""
        lo, hi = x.min(axis=0).astype(np.float64), x.max(axis=0).astype(np.float64)
        with np.errstate(over="ignore"):
            span = hi - lo
        bad = np.flatnonzero(~np.isfinite(span))
        if len(bad):
            k = int(bad[0])
            raise UserError(
                f"{source}: column {k + 1} spans {lo[k]:.3g} to {hi[k]:.3g}, a range float64 cannot hold; "
                "rescale that column before training"
            )
        return cls(lo, hi)

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
