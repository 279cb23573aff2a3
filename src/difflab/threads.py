"""How many threads torch uses: fitted to the cores that are free now, unless the user says."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask), not all the machine has."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def free_cores() -> int:
    """Usable cores minus the load other processes put on them (1-minute load average), at least 1."""
    cores = usable_cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return cores
    return max(1, min(cores, int(cores - load + 0.5)))


def choose_threads(requested: int) -> int:
    """`requested` if > 0, else the cores that are free now (an oversubscribed pool collapses throughput)."""
    if requested > 0:
        return requested
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return free_cores()


@contextmanager
def torch_threads(requested: int) -> Iterator[int]:
    """Use `choose_threads(requested)` intra-op threads inside the block, and restore the previous count after."""
    before = torch.get_num_threads()
    chosen = choose_threads(requested)
    torch.set_num_threads(chosen)
    try:
        yield chosen
    finally:
        torch.set_num_threads(before)
