"""The `difflab` command's entry point: catches Ctrl-C even while the CLI module itself is still importing."""

from __future__ import annotations

import sys


def main() -> int:
    """Run the CLI; an interrupt before it is ready ends quietly with exit code 130, as one inside it does."""
    try:
        from difflab.cli import main as cli_main
    except KeyboardInterrupt:
        print("difflab: interrupted", file=sys.stderr)
        return 130
    return cli_main()
