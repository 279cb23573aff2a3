"""How long work reports its progress: a bar in a terminal or notebook, one plain line per stage in a log."""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

if importlib.util.find_spec("ipywidgets") is not None:
    from tqdm.auto import tqdm
else:  # without ipywidgets tqdm.auto warns and falls back to the text bar anyway
    from tqdm import tqdm


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where stderr is no terminal but a bar still renders)."""
    return "ipykernel" in sys.modules


def show_progress(progress: bool | None) -> tuple[bool, bool]:
    """(bar, lines): `progress` True forces a bar, False silences both; None chooses by where output goes."""
    if progress is not None:
        return progress, False
    interactive = sys.stderr.isatty() or in_notebook()
    return interactive, not interactive


class Progress:
    """A bar over `total` units of one stage, or a start and an end line when output goes to a log."""

    def __init__(self, desc: str, total: int, progress: bool | None, unit: str = "step") -> None:
        self.bar_on, self.lines = show_progress(progress)
        self.desc = desc
        self.start = time.perf_counter()
        self.bar = tqdm(total=total, desc=desc, unit=unit, disable=not self.bar_on, file=sys.stderr, leave=False)
        if self.lines:
            print(f"difflab: {desc} ...", file=sys.stderr, flush=True)

    def update(self, n: int = 1) -> None:
        self.bar.update(n)

    def close(self, *, done: bool = True) -> None:
        self.bar.close()
        if self.lines and done:
            print(f"difflab: {self.desc} done in {time.perf_counter() - self.start:.1f}s", file=sys.stderr, flush=True)


@contextmanager
def stage(desc: str, total: int, progress: bool | None, unit: str = "step") -> Iterator[Progress]:
    """`with stage("sampling 10000 points", steps * chunks, progress) as p: ... p.update()`."""
    p = Progress(desc, total, progress, unit)
    try:
        yield p
    except BaseException:
        p.close(done=False)
        raise
    p.close()
