"""What the trainer saves and where it goes: a `Checkpoint`, the `Store` it is written to, and a store in memory.

The trainer knows only this interface; `difflab.run.RunStore` writes the same state into a run directory, and
`MemoryStore` keeps it in memory (`difflab.train(..., out=None)`), so the trainer is the same code either way.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Protocol

import torch


@dataclass
class Checkpoint:
    """Everything a resumed run needs besides its config: weights, EMA weights and the training state."""

    step: int
    model: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor]
    state: dict[str, Any]


class Store(Protocol):
    """Where the trainer's state goes: a run directory, or memory."""

    def begin(self) -> None: ...

    def save(self, ckpt: Checkpoint) -> None: ...

    def restore(self) -> Checkpoint | None: ...

    def log(self, row: dict[str, Any]) -> None: ...


class MemoryStore:
    """The trainer's persistence in memory: the last checkpoint and the log (for `difflab.train(out=None)`)."""

    def __init__(self) -> None:
        self.checkpoint: Checkpoint | None = None
        self.metrics: list[dict[str, Any]] = []

    def begin(self) -> None:
        return None

    def save(self, ckpt: Checkpoint) -> None:
        self.checkpoint = copy.deepcopy(ckpt)

    def restore(self) -> Checkpoint | None:
        step = self.checkpoint.step if self.checkpoint else 0
        self.metrics = [r for r in self.metrics if r["step"] <= step]
        return copy.deepcopy(self.checkpoint)

    def log(self, row: dict[str, Any]) -> None:
        self.metrics.append(row)
