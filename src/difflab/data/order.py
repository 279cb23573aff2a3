"""Which training items each process sees, in which order: epochs of DistributedSampler permutations.

Each epoch is a fresh permutation (seeded by seed + epoch, so every process agrees on it) split across the
processes; a process reads its share in order, `batch` items at a time, and a batch that runs past the end of
an epoch continues into the next. The whole position is (epoch, offset), so a checkpoint can store it and a
resumed run draws exactly the batches the uninterrupted run would have drawn. A world of one is the same code.
"""

from __future__ import annotations

import torch
from torch.utils.data import DistributedSampler


class EpochOrder:
    """An endless, resumable stream of this process's item indices."""

    def __init__(self, n_items: int, *, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.sampler = DistributedSampler(range(n_items), num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
        self.epoch = 0
        self.offset = 0
        self._indices = self._epoch_indices()

    def _epoch_indices(self) -> torch.Tensor:
        self.sampler.set_epoch(self.epoch)
        return torch.as_tensor(list(self.sampler), dtype=torch.int64)

    def take(self, count: int) -> torch.Tensor:
        """The next `count` indices, moving on to new epochs as needed."""
        parts = []
        while count > 0:
            if self.offset == len(self._indices):
                self.epoch, self.offset = self.epoch + 1, 0
                self._indices = self._epoch_indices()
            part = self._indices[self.offset : self.offset + count]
            self.offset += len(part)
            count -= len(part)
            parts.append(part)
        return torch.cat(parts)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "offset": self.offset}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.offset = int(state["epoch"]), int(state["offset"])
        self._indices = self._epoch_indices()
        if not 0 <= self.offset <= len(self._indices):
            raise ValueError(f"data position {self.offset} is outside an epoch of {len(self._indices)} items")
