"""Shared by the benchmarks: config overrides, runs that are reused when kept, threads, and table cells."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import difflab
from difflab.evaluation import Stat
from difflab.metrics import energy_distance, expected_floor, standardize_like
from difflab.points.evaluation import FLOOR_DRAWS, reference_pairs


def overrides(items: list[str]) -> dict[str, str]:
    """`--set KEY=VALUE ...` as training options (validated by difflab like any option)."""
    return dict(item.split("=", 1) for item in items)


def trainer_for(data: str, options: dict[str, Any]) -> tuple[Any, Callable[[Any, int], difflab.Run]]:
    """A `Trainer` for `data` with exactly `options` (no per-data defaults: a benchmark names what it measures),
    and a function that makes a `Run` of a denoiser at a step, to evaluate the EMA weights while training goes on."""
    from difflab.config import make_config
    from difflab.kinds import kind_for_spec
    from difflab.model import TrainedModel
    from difflab.trainer import Trainer

    kind = kind_for_spec(data)
    cfg = make_config({**options, "data": data})
    loaded = kind.load_spec(data, cfg)
    training_set = kind.training_set(loaded, cfg, data)
    cfg = kind.settle_config(cfg, training_set)
    copy = kind.data_copy(loaded)

    def as_run(denoiser: Any, step: int) -> difflab.Run:
        return difflab.Run(TrainedModel(cfg, training_set.info, denoiser), training_set.source, step=step, data=copy)

    return Trainer(cfg, training_set), as_run


def trained(data: str, root: Path | None, name: str, **options: Any) -> difflab.Run:
    """Train `data` into `root/name`, or continue/reuse the run already there; in memory when `root` is None."""
    return difflab.train(data, None if root is None else root / name, progress=False, **options)


def pin_threads(threads: int = 1) -> str:
    """Pin torch's threads (timings on a shared 2-core machine need it) and say so for the table header."""
    torch.set_num_threads(threads)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"torch threads {threads}, load average {load:.1f} at start"


def ratios(run: difflab.Run, draws: list[np.ndarray], n: int) -> Stat:
    """Energy-distance ratio of each draw (samples in data units), against the data `evaluate` uses."""
    pairs = reference_pairs(run, n, max(FLOOR_DRAWS, len(draws)), 0, None)
    floor = float(np.mean([expected_floor(standardize_like(torch.as_tensor(t))[0], n) for t, _ in pairs]))
    values = []
    for i, samples in enumerate(draws):
        t, s = standardize_like(torch.as_tensor(pairs[i][0]), torch.as_tensor(samples))
        values.append(energy_distance(s, t) / floor)
    return Stat(values)


def cell(stat: Stat, digits: int = 2) -> str:
    """ "0.38 ± 0.05" (mean ± std over draws)."""
    return stat.format(digits)
