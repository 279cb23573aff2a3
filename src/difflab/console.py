"""The `difflab` command's entry point: catches Ctrl-C even while the CLI module itself is still importing."""

from __future__ import annotations

import signal
import sys


def main() -> int:
    """Run the CLI; an interrupt before it is ready ends quietly with exit code 130, as one inside it does.

    A Ctrl-C that lands inside a large import (torch) can surface as another exception from the half-imported
    module, so the interrupt is recorded by our own handler and any failure of the import after it counts as it.
    """
    interrupted: list[int] = []

    def on_interrupt(signum: int, frame: object) -> None:
        interrupted.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        from difflab.cli import main as cli_main
    except BaseException:
        if interrupted:
            print("difflab: interrupted", file=sys.stderr)
            return 130
        raise
    finally:
        signal.signal(signal.SIGINT, previous)
    return cli_main()
