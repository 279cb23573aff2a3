"""The `difflab` command's entry point: Ctrl-C ends it quietly (exit 130) from its first line to its last."""

from __future__ import annotations

import signal
import sys


def main() -> int:
    """Run the CLI with our own SIGINT handler installed for the whole command, not only around the import.

    A process started in the background by a shell inherits SIGINT as *ignored*, and Python keeps it so; putting
    that disposition back after the import let a Ctrl-C between the import and the trainer's own handler vanish
    (training went on for minutes). A Ctrl-C that lands inside a large import (torch) can surface as another
    exception from the half-imported module, so any failure of the import after an interrupt counts as it.
    """
    interrupted: list[int] = []

    def on_interrupt(signum: int, frame: object) -> None:
        interrupted.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        try:
            from difflab.cli import main as cli_main
        except BaseException:
            if interrupted:
                print("difflab: interrupted", file=sys.stderr)
                return 130
            raise
        return cli_main()
    finally:
        signal.signal(signal.SIGINT, previous)
