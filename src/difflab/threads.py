"""How many threads torch uses: fitted to the cores other programs leave free, and refitted while training.

An intra-op thread pool larger than the free cores collapses: on the 2-core machine, `difflab train` with two
threads ran at 8-9 steps/s next to one busy process, against 114-159 with one thread (benchmarks/threads.py
has the table). So the default (`threads=0`) measures what the rest of the machine uses — from the kernel's
CPU counters where it has them (Linux), else from the load average — and keeps one thread per free core. The
trainer measures again every few seconds, so load that starts or stops mid-run is followed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

#: How often the trainer looks again (seconds), and how long a one-off measurement watches the machine.
RECHECK_S = 5.0
PROBE_S = 0.2


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask), not all the machine has."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _cpu_counters() -> tuple[float, float] | None:
    """(busy seconds of all CPUs, busy seconds of this process) from /proc; None where there is no /proc."""
    try:
        with open("/proc/stat") as f:
            fields = [float(v) for v in f.readline().split()[1:]]
        with open("/proc/self/stat") as f:
            mine = f.read().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return (sum(fields[:8]) - idle) / tick, (float(mine[11]) + float(mine[12])) / tick


class ThreadGovernor:
    """Chooses intra-op threads from the CPU time other processes used since the last look."""

    def __init__(self) -> None:
        self.cores = usable_cores()
        self.last = _cpu_counters()
        self.last_time = time.monotonic()

    def others_busy(self) -> float | None:
        """Cores' worth of CPU other processes used since the last call (None without /proc); waits until at
        least `PROBE_S` seconds have passed since then, so a first look is never a snapshot of nothing."""
        wait = PROBE_S - (time.monotonic() - self.last_time)
        if wait > 0:
            time.sleep(wait)
        now, when = _cpu_counters(), time.monotonic()
        if now is None or self.last is None or when - self.last_time <= 0:
            return None
        busy = (now[0] - self.last[0]) - (now[1] - self.last[1])
        elapsed = when - self.last_time
        self.last, self.last_time = now, when
        return max(0.0, busy / elapsed)

    def choose(self) -> int:
        """One thread per core the others leave free (at least 1)."""
        busy = self.others_busy()
        if busy is None:
            try:
                busy = os.getloadavg()[0]
            except (AttributeError, OSError):
                busy = 0.0
        return max(1, min(self.cores, int(self.cores - busy + 0.5)))


def choose_threads(requested: int, governor: ThreadGovernor | None = None) -> int:
    """`requested` if > 0, else OMP_NUM_THREADS if set, else the free cores (measured by `governor`, or over
    `PROBE_S` seconds from now)."""
    if requested > 0:
        return requested
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return (governor or ThreadGovernor()).choose()


@contextmanager
def torch_threads(requested: int, governor: ThreadGovernor | None = None) -> Iterator[int]:
    """Use `choose_threads(requested)` intra-op threads inside the block, and restore the previous count after."""
    before = torch.get_num_threads()
    chosen = choose_threads(requested, governor)
    torch.set_num_threads(chosen)
    try:
        yield chosen
    finally:
        torch.set_num_threads(before)


class Refit:
    """The trainer's periodic look: with automatic threads, refit them to the free cores every `RECHECK_S`."""

    def __init__(self, requested: int) -> None:
        self.active = requested == 0 and not os.environ.get("OMP_NUM_THREADS", "").isdigit()
        self.governor = ThreadGovernor() if self.active else None
        self.next_check = time.monotonic() + RECHECK_S

    def __call__(self) -> None:
        if self.governor is None or time.monotonic() < self.next_check:
            return
        self.next_check = time.monotonic() + RECHECK_S
        chosen = self.governor.choose()
        if chosen != torch.get_num_threads():
            torch.set_num_threads(chosen)
