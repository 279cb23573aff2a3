"""Errors for bad input, and how messages name options.

A `UserError` is bad input (a file, an option value, a damaged run): the CLI prints it as one line and exits
with code 2; the Python API raises it. Messages name options through `option` and `setting`, which read
`steps=10` from Python and `--steps 10` on the command line, so the library never assumes its caller.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Literal

OptionStyle = Literal["keyword", "flag"]
_STYLE: ContextVar[OptionStyle] = ContextVar("difflab_option_style", default="keyword")


class UserError(Exception):
    """Bad input from the user (file, option, value, checkpoint): say what and where, no traceback."""


@contextmanager
def option_style(style: OptionStyle) -> Iterator[None]:
    """Inside the block, `option()` and `setting()` read like command-line flags (`flag`) or keywords."""
    token = _STYLE.set(style)
    try:
        yield
    finally:
        _STYLE.reset(token)


def option(name: str) -> str:
    """An option as the caller typed it: `--name-with-dashes` on the command line, `name` in Python."""
    return "--" + name.replace("_", "-") if _STYLE.get() == "flag" else name


def setting(name: str, value: object, *, quoted: bool = False) -> str:
    """An option with its value: `--steps 10` on the command line, `steps=10` in Python (`quoted`: repr on both)."""
    if _STYLE.get() == "flag":
        return f"{option(name)} {value!r}" if quoted else f"{option(name)} {value}"
    return f"{name}={value!r}"
