"""Interrupts: those the command line received before training could hear them, and training's own handler
(a leaf module: only the standard library, so the console can import it before anything heavy).

`difflab.console` records every SIGINT here. One that arrived inside an import is delivered again later as a
KeyboardInterrupt, and code that swallows exceptions (a finalizer, a callback) can lose it; the trainer takes
this record when it takes over the signal, so a Ctrl-C during start-up always ends training at its first step,
and once taken it is not delivered again (which raised a KeyboardInterrupt into the trainer's clean stop).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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


@contextmanager
def handled(on_signal: Callable[[int], None]) -> Iterator[None]:
    """Inside, SIGINT and SIGTERM call `on_signal(signum)` instead of their handlers, and a start-up interrupt not
    yet acted on is taken and passed to it at once. Only the main thread may install handlers; elsewhere (a
    training thread of a notebook, say) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, lambda signum, _frame: on_signal(signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    taken = take()
    if taken is not None:
        on_signal(taken)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
