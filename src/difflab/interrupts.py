"""Interrupts the command line received before training could hear them (a leaf module: no imports).

`difflab.console` records every SIGINT here. One that arrived inside an import is delivered again later as a
KeyboardInterrupt, and code that swallows exceptions (a finalizer, a callback) can lose it; the trainer reads
this record when it takes over the signal, so a Ctrl-C during start-up always ends training at its first step.
"""

from __future__ import annotations

_received: list[int] = []


def record(signum: int) -> None:
    """Note an interrupt (called from a signal handler: appending to a list is all it does)."""
    _received.append(signum)


def pending() -> int | None:
    """The last interrupt recorded in this process, or None."""
    return _received[-1] if _received else None
