"""Every numeric option of every command, checked in one place: type, finiteness and range.

The training config, the sampling options and the CLI-only options (`n`, `frames`, `scale`, ...) all go
through `check_number`, so a value is refused with one message naming the option before any work starts.
`require_memory` refuses sizes the machine cannot hold before they are allocated.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from difflab.errors import UserError, setting

#: Large enough for any real use, small enough that an index or seed cannot overflow where it is used.
BIG = 10**9


@dataclass(frozen=True)
class Bound:
    """The allowed values of one option: `kind` int or float, in [lo, hi] (or (lo, ...) when `lo_open`)."""

    kind: type
    lo: float
    hi: float
    lo_open: bool = False
    hi_open: bool = False

    def describe(self) -> str:
        """ "from 1 to 1,000,000,000", "in (0, 10]", ...: the whole allowed range, as a reader would say it."""
        lo, hi = (f"{int(v):,}" if self.kind is int else f"{v:g}" for v in (self.lo, self.hi))
        if self.kind is int and not self.lo_open and not self.hi_open:
            return f"from {lo} to {hi}"
        left = "(" if self.lo_open else "["
        right = ")" if self.hi_open else "]"
        return f"in {left}{lo}, {hi}{right}"

    def contains(self, value: float) -> bool:
        above = value > self.lo if self.lo_open else value >= self.lo
        below = value < self.hi if self.hi_open else value <= self.hi
        return above and below


BOUNDS: dict[str, Bound] = {
    # training
    "n_data": Bound(int, 2, BIG),
    "seed": Bound(int, 0, 2**62),
    "steps": Bound(int, 1, BIG),
    "batch_size": Bound(int, 1, 2**20),
    "lr": Bound(float, 0.0, 10.0, lo_open=True),
    "lr_warmup": Bound(int, 0, BIG),
    "grad_clip": Bound(float, 0.0, 1e9),
    "ema_decay": Bound(float, 0.0, 1.0, hi_open=True),
    "timesteps": Bound(int, 2, 100_000),
    "min_snr_gamma": Bound(float, 0.0, 1e9, lo_open=True),
    "hidden": Bound(int, 1, 1 << 16),
    "depth": Bound(int, 1, 1000),
    "fourier_features": Bound(int, 0, 1 << 16),
    "p_uncond": Bound(float, 0.0, 1.0, hi_open=True),
    "labelled": Bound(int, -1, BIG),
    "log_every": Bound(int, 1, BIG),
    "checkpoint_every": Bound(int, 1, BIG),
    "sample_every": Bound(int, 0, BIG),
    "threads": Bound(int, 0, 1024),
    "student_steps": Bound(int, 0, 1000),
    "distill_pairs": Bound(int, 0, 10_000_000),
    "teacher_steps": Bound(int, 0, 100_000),
    # sampling and the commands around it
    "n": Bound(int, 1, BIG),
    "eta": Bound(float, 0.0, 1.0),
    "guidance": Bound(float, 0.0, 100.0),
    "chunk_size": Bound(int, 1, 10_000_000),
    "frames": Bound(int, 1, 1000),
    "scale": Bound(int, 1, 32),
    "per_class": Bound(int, 2, 100_000),
    "draws": Bound(int, 1, 100),
    "k": Bound(int, 1, 1000),
}


def check_number(name: str, value: Any, bound: Bound | None = None) -> Any:
    """`value` as the option's type if it is finite and within its bound; else a UserError naming the option."""
    bound = bound or BOUNDS[name]
    what = "an integer" if bound.kind is int else "a number"
    if isinstance(value, (bool, np.bool_)):
        raise UserError(f"invalid {setting(name, value, quoted=True)}; expected {what}")
    if isinstance(value, np.generic) and value.ndim == 0:
        value = value.item()  # numpy scalars count as the Python numbers they hold
    if bound.kind is int:
        if isinstance(value, float) and value.is_integer() and math.isfinite(value):
            value = int(value)
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise UserError(f"invalid {setting(name, value, quoted=True)}; expected an integer") from None
        if not isinstance(value, int):
            raise UserError(f"invalid {setting(name, value, quoted=True)}; expected an integer")
    else:
        try:
            if isinstance(value, (list, tuple, dict, set)) or hasattr(value, "shape"):
                raise TypeError
            value = float(value)
        except (TypeError, ValueError, OverflowError):
            raise UserError(f"invalid {setting(name, value, quoted=True)}; expected a number") from None
        if not math.isfinite(value):
            raise UserError(f"invalid {setting(name, value, quoted=True)}; expected a finite number")
    if not bound.contains(value):
        raise UserError(f"invalid {setting(name, value, quoted=True)}; must be {bound.describe()}")
    return value


def check_path(name: str, value: Any) -> Path:
    """A path argument as a `Path`: a non-empty str or os.PathLike without NUL bytes; else a UserError naming it."""
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if isinstance(text, str) and text and "\x00" not in text:
            return Path(text)
    raise UserError(f"invalid {setting(name, value, quoted=True)}; expected a path (a str or pathlib.Path)")


def check_flag(name: str, value: Any, *, optional: bool = False) -> Any:
    """A true/false argument (None too when `optional`); else a UserError naming it."""
    if isinstance(value, (bool, np.bool_)) or (optional and value is None):
        return None if value is None else bool(value)
    expected = "True, False or None" if optional else "True or False"
    raise UserError(f"invalid {setting(name, value, quoted=True)}; expected {expected}")


def available_memory() -> int:
    """Bytes this process could still allocate: MemAvailable on Linux, else physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 40


def require_memory(needed: float, what: str) -> None:
    """Refuse work that would need more memory than the machine has, before allocating it."""
    free = available_memory()
    if needed > free:
        raise UserError(f"{what} needs about {_size(needed)} of memory; this machine has {_size(free)} available")


def require_disk(needed: float, folder: Path, what: str) -> None:
    """Refuse to write more than the file system under `folder` has free, before any of it is computed."""
    existing = next((p for p in [folder, *folder.parents] if p.exists()), None)
    if existing is None:
        return
    try:
        free = shutil.disk_usage(existing).free
    except OSError:
        return
    if needed > free:
        raise UserError(f"{what} needs about {_size(needed)} of disk in {folder}; {_size(free)} is free there")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError
