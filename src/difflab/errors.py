"""Errors for bad input, and how messages name options.

A `UserError` is bad input (a file, an option value, a damaged run): the CLI prints it as one line and exits
with code 2; the Python API raises it. Messages name options through `option` and `setting`, which read
`steps=10` from Python and `--steps 10` on the command line, so the library never assumes its caller.
"""

from __future__ import annotations

import reprlib
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


_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 60
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = _SHORT.maxset = 6


def short(value: object) -> str:
    """A repr of at most about 60 characters: a message names a value, it never prints a whole array or frame."""
    shape = getattr(value, "shape", None)
    if shape is not None and not isinstance(value, (int, float, str)) and len(tuple(shape)) > 0:
        return f"<{type(value).__name__} of shape {tuple(shape)}>"
    return _SHORT.repr(value)


def setting(name: str, value: object, *, quoted: bool = False) -> str:
    """An option with its value: `--steps 10` on the command line, `steps=10` in Python (`quoted`: repr on both)."""
    if _STYLE.get() == "flag":
        return f"{option(name)} {short(value)}" if quoted else f"{option(name)} {str(value)[:60]}"
    return f"{name}={short(value)}"
