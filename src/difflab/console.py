"""The `difflab` command's entry point: Ctrl-C ends it quietly (exit 130) from its first line to its last."""

from __future__ import annotations

import signal
import sys
from types import FrameType

from difflab import interrupts

#: How soon an interrupt that arrived inside an import is delivered again (seconds).
RETRY_S = 0.01


def _inside_import(frame: FrameType | None) -> bool:
    """True while Python's import machinery is on the stack (a module is being loaded)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def main() -> int:
    """Run the CLI with our own SIGINT handler installed for the whole command, not only around the import.

    A process started in the background by a shell inherits SIGINT as *ignored*, and Python keeps it so; putting
    that disposition back after the import let a Ctrl-C between the import and the trainer's own handler vanish
    (training went on for minutes). A KeyboardInterrupt raised inside an import is not safe either: an import
    callback swallows it ("Exception ignored in ..."), and inside a C++ extension's module code (torch) it
    aborts the process. So an interrupt that lands inside an import is delivered again, by a timer, once the
    import has finished; and every interrupt is recorded (`difflab.interrupts`) for the trainer, in case that
    second delivery lands in code that swallows it. The trainer takes the record when it installs its own handler;
    a retry that fires after that delivers nothing, since the trainer is already stopping at its first step.
    """

    def deliver(frame: FrameType | None) -> None:
        if _inside_import(frame):
            signal.setitimer(signal.ITIMER_REAL, RETRY_S)
            return
        raise KeyboardInterrupt

    def on_interrupt(signum: int, frame: FrameType | None) -> None:
        interrupts.record(signum)
        deliver(frame)

    def on_retry(signum: int, frame: FrameType | None) -> None:
        if interrupts.pending() is not None:  # the trainer may have taken it meanwhile, and stops on its own
            deliver(frame)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    previous_alarm = signal.signal(signal.SIGALRM, on_retry)
    try:
        try:
            from difflab.cli import main as cli_main
        except BaseException:
            if interrupts.pending() is not None:
                print("difflab: interrupted", file=sys.stderr)
                return 130
            raise
        return cli_main()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_alarm)
        signal.signal(signal.SIGINT, previous)
