"""Interrupts the command line received before training could hear them (a leaf module: no imports).

`difflab.console` records every SIGINT here. One that arrived inside an import is delivered again later as a
KeyboardInterrupt, and code that swallows exceptions (a finalizer, a callback) can lose it; the trainer takes
this record when it takes over the signal, so a Ctrl-C during start-up always ends training at its first step,
and once taken it is not delivered again (which raised a KeyboardInterrupt into the trainer's clean stop).
"""

from __future__ import annotations

_received: list[int] = []


def record(signum: int) -> None:
    """Note an interrupt (called from a signal handler: appending to a list is all it does)."""
    _received.append(signum)


def pending() -> int | None:
    """The last interrupt recorded in this process and not yet taken, or None."""
    return _received[-1] if _received else None


def take() -> int | None:
    """The last interrupt recorded, now acted on: it is no longer pending, so it is not delivered again."""
    last = pending()
    _received.clear()
    return last
