"""Hooks into training: a callback sees each event and may stop the run.

    def stop_when_flat(event: difflab.Event) -> bool:
        return event.kind == "step" and event.step > 2000 and event.loss < 0.05

    run = difflab.train("moons", callbacks=[stop_when_flat])

A callback is any callable taking an `Event`; returning True stops training after that step, with a checkpoint,
as a finished run would (`run.step` tells where; `run.train()` continues). Callbacks run on the process that
writes the run (rank 0 under torchrun).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from difflab.errors import UserError, short

EventKind = Literal["step", "checkpoint", "snapshot"]


@dataclass(frozen=True)
class Event:
    """One moment of training.

    `step`: after each optimizer step, with `loss` (that step's mean loss). `checkpoint`: a checkpoint of `step`
    was committed. `snapshot`: samples drawn with the EMA weights every `sample_every` steps, in `samples` (points
    in data units, or uint8 images).
    """

    kind: EventKind
    step: int
    loss: float | None = None
    samples: np.ndarray | None = None


Callback = Callable[[Event], object]


def check_callbacks(callbacks: object) -> tuple[Callback, ...]:
    """A sequence of callables, or a UserError naming what was given instead."""
    if callbacks is None:
        return ()
    if callable(callbacks) or not isinstance(callbacks, Sequence) or isinstance(callbacks, str):
        raise UserError(f"invalid callbacks={short(callbacks)}; expected a list of functions taking an Event")
    for callback in callbacks:
        if not callable(callback):
            raise UserError(f"invalid callback {short(callback)} in callbacks; each must be a function of an Event")
    return tuple(callbacks)


def emit(callbacks: Sequence[Callback], event: Event) -> bool:
    """Tell every callback; True when any asks to stop (every callback hears the event either way)."""
    answers = [callback(event) for callback in callbacks]
    return any(answer is True for answer in answers)
