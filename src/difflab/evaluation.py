"""What `evaluate` reports for any kind of run: each figure as a mean ± spread over independent draws."""

from __future__ import annotations

import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from difflab.checkpoint import atomic_write_json
from difflab.version import __version__

EVAL = "eval.json"


def mean_and_spread(mean: float, std: float | None) -> str:
    """A figure as "0.57 ± 0.30": the spread to two significant digits, the mean to the same decimal place."""
    if std is None or not math.isfinite(std) or std <= 0 or not math.isfinite(mean):
        return f"{mean:.3g}"
    decimals = max(0, 1 - math.floor(math.log10(std)))
    return f"{mean:.{decimals}f} ± {std:.{decimals}f}"


@dataclass
class Stat:
    """One figure measured on several independent draws."""

    values: list[float]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def std(self) -> float:
        """Sample standard deviation over draws (NaN for a single draw: no spread can be known)."""
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else float("nan")

    def format(self, digits: int = 2) -> str:
        """ "0.38 ± 0.05", or "0.38" alone when there is one draw."""
        if math.isnan(self.std):
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"

    def to_dict(self) -> dict[str, Any]:
        std = None if math.isnan(self.std) else self.std
        return {"mean": self.mean, "std": std, "values": list(self.values)}


@dataclass
class Evaluation:
    """Named figures (each a `Stat`), how they were measured, and a plain-language reading of them."""

    kind: str
    metrics: dict[str, Stat]
    headline: list[str]  # the figures that say how good the samples are (what `compare` shows)
    n: int
    draws: int
    seed: int
    sampling: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    seconds: float = 0.0
    verdict: str = ""  # one line a person reads first: the headline against its floor, in words

    def __getitem__(self, name: str) -> Stat:
        return self.metrics[name]

    def summary(self) -> str:
        """The printed report: the verdict, one line per figure, then what the numbers mean."""
        return "\n".join([self.verdict, *self.lines] if self.verdict else self.lines)

    def to_dict(self, run_step: int | None = None) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "metrics": {k: v.to_dict() for k, v in self.metrics.items()},
            "headline": self.headline,
            "verdict": self.verdict,
            "n": self.n,
            "draws": self.draws,
            "seed": self.seed,
            "sampling": self.sampling,
            "details": self.details,
            "seconds": round(self.seconds, 2),
            "run_step": run_step,
            "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": {
                "difflab": __version__,
                "torch": torch.__version__,
                "numpy": np.__version__,
                "python": platform.python_version(),
            },
        }

    def write(self, path: Path, run_step: int | None = None) -> None:
        atomic_write_json(path, self.to_dict(run_step))
