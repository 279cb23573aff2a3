"""Which moments of a process to show: evenly in log SNR, where the picture changes, not evenly in t.

With the cosine schedule, moons appear only in the last ~4 of 41 frames spaced evenly in t: most of the chain
is near-pure noise. log SNR falls steadily with what a sample resolves, so frames spaced evenly in it show the
structure forming. Used by the reverse-process figures, the GIFs and the forward strips of both kinds.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

from difflab.schedule import Schedule


def by_log_snr(schedule: Schedule, count: int, *, low: float = -6.0, high: float = 8.0) -> list[int]:
    """Up to `count` step indices of `schedule` (noisiest first), evenly spaced in log SNR within [low, high].

    The range is clipped to what the schedule spans; steps the rounding would repeat are shown once.
    """
    log_snr = schedule.log_snr.numpy()  # decreasing in the step index
    top, bottom = min(high, float(log_snr[0])), max(low, float(log_snr[-1]))
    targets = np.linspace(bottom, top, max(count, 1))
    picks = {int(np.abs(log_snr - value).argmin()) for value in targets}
    return sorted(picks, reverse=True)


#: At most this many training snapshots in a progress strip (evenly chosen, the last always shown).
STRIP_PANELS = 8
Item = TypeVar("Item")


def strip_of(snapshots: list[Item], panels: int = STRIP_PANELS) -> list[Item]:
    """Up to `panels` of `snapshots`, evenly chosen, the first and the last always among them."""
    keep = np.linspace(0, len(snapshots) - 1, min(panels, len(snapshots))).round().astype(int)
    return [snapshots[k] for k in sorted(set(keep.tolist()))]
