"""Process group and device: one `World` object hides whether training runs in one process or under torchrun.

torchrun (single- or multi-node, also under SLURM's srun) sets RANK, WORLD_SIZE and LOCAL_RANK; we then join
PyTorch's own process group (NCCL on CUDA, gloo otherwise). Without those variables the same code runs as a
world of one, where every collective is the identity.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from difflab.errors import UserError, setting
from difflab.types import DeviceChoice, choices

DEVICE_CHOICES: tuple[str, ...] = choices(DeviceChoice)

T = TypeVar("T")


class PeerLost(Exception):
    """A collective failed: another training process died or cannot be reached (torchrun restarts them all)."""


@contextmanager
def collective(what: str) -> Iterator[None]:
    """Turn the backend's error for a dead peer (a bare RuntimeError from gloo) into one clear `PeerLost`."""
    try:
        yield
    except RuntimeError as e:
        reason = (str(e).splitlines() or [type(e).__name__])[0].split(". This is typically")[0]
        reason = reason.rsplit("] ", 1)[-1][:120]  # drop gloo's source location
        raise PeerLost(f"lost contact with another training process during {what} ({reason})") from None


@dataclass(frozen=True)
class World:
    """This process's place among the training processes, and the few collectives the trainer needs."""

    rank: int = 0
    size: int = 1

    @property
    def is_main(self) -> bool:
        """Only the main process writes files and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        """Sum `t` over all processes, in place; returns it."""
        if self.distributed:
            with collective("a step's loss exchange"):
                dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def average_gradients(self, params: Iterable[nn.Parameter]) -> None:
        """Replace each gradient by its mean over processes, with one all-reduce of a flat buffer.

        This is what DistributedDataParallel does after backward, done explicitly so that every objective,
        also one that sets gradients itself (the VDM bound's two gradient calls), is averaged the same way.
        """
        if not self.distributed:
            return
        grads = [p.grad for p in params if p.grad is not None]
        flat = torch.cat([g.flatten() for g in grads])
        with collective("gradient averaging"):
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= self.size
        for g, mean in zip(grads, flat.split([g.numel() for g in grads]), strict=True):
            g.copy_(mean.view_as(g))

    def gather(self, obj: T) -> list[T]:
        """Every process's `obj`, in rank order (picklable objects between our own processes)."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.size
        with collective("a checkpoint's random states"):
            dist.all_gather_object(out, obj)
        return out

    def from_main(self, obj: T) -> T:
        """Rank 0's `obj` on every process."""
        if not self.distributed:
            return obj
        box = [obj]
        with collective("a broadcast from rank 0"):
            dist.broadcast_object_list(box, src=0)
        return box[0]

    def check(self, error: str | None) -> None:
        """Raise the main process's error (if any) on every process, so no rank waits for a dead peer."""
        error = self.from_main(error)
        if error is not None:
            raise UserError(error)


def resolve_device(choice: str, local_rank: int = 0) -> torch.device:
    """`auto` prefers CUDA, then Apple MPS, then CPU; an explicit choice that is unavailable is a UserError."""
    if choice not in DEVICE_CHOICES:
        raise UserError(f"invalid {setting('device', choice, quoted=True)}; choose one of: {', '.join(DEVICE_CHOICES)}")
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if choice == "auto":
        choice = "cuda" if cuda else "mps" if mps else "cpu"
    if choice == "cuda":
        if not cuda:
            raise UserError(f"{setting('device', 'cuda')}, but PyTorch sees no CUDA GPU (use cpu or auto)")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if choice == "mps" and not mps:
        raise UserError(f"{setting('device', 'mps')}, but the Apple MPS backend is not available (use cpu or auto)")
    return torch.device(choice)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, str(default))
    try:
        return int(value)
    except ValueError:
        raise UserError(f"environment variable {name}={value!r} is not an integer") from None


def rank() -> int:
    """This process's rank as torchrun set it (0 outside torchrun): who may print."""
    return _env_int("RANK", 0)


def world_size() -> int:
    """How many processes torchrun started (1 outside torchrun)."""
    return _env_int("WORLD_SIZE", 1)


def start(device_choice: str) -> tuple[World, torch.device]:
    """Join the torchrun process group if there is one (NCCL for CUDA, gloo otherwise) and pick the device."""
    size, rank, local_rank = _env_int("WORLD_SIZE", 1), _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    device = resolve_device(device_choice, local_rank)
    if size == 1:
        return World(), device
    if device.type == "mps":
        raise UserError(f"distributed training on MPS is not supported by PyTorch; use {setting('device', 'cpu')}")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        store = _attempt_store(size)
        if store is None:
            dist.init_process_group(backend=backend)
        else:
            dist.init_process_group(backend=backend, store=store, rank=rank, world_size=size)
    return World(rank=rank, size=size), device


def _attempt_store(size: int) -> dist.Store | None:
    """The torchrun agent's store, under a prefix of its own for each restart; None outside torchrun's agent store.

    After `--max-restarts` restarted the workers, torch 2.13 reuses the agent's store with the previous attempt's
    keys still in it, and gloo's new processes then connect to the dead ones' addresses (3 of 4 restarts hung or
    failed in a bare all-reduce loop; 6 of 6 succeeded with a prefix per attempt).
    """
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    attempt = _env_int("TORCHELASTIC_RESTART_COUNT", 0)
    host, port = os.environ.get("MASTER_ADDR", "localhost"), _env_int("MASTER_PORT", 29500)
    client = dist.TCPStore(host, port, size, is_master=False, timeout=timedelta(minutes=10))
    return dist.PrefixStore(f"difflab/attempt_{attempt}", client)


def finish(world: World) -> None:
    """Wait until every rank is done before the process group goes away.

    Rank 0 writes the checkpoints, so it finishes last; a peer that tore down its gloo connections
    first occasionally made rank 0 abort in teardown ("terminate called without an active exception":
    2 of 22 runs of tests/test_distributed.py on 2 cores; 0 of 20 with this barrier). Called on success
    only: after an error on one rank the others would never arrive.
    """
    if world.distributed and dist.is_initialized():
        dist.barrier()


def stop(world: World) -> None:
    """Leave the process group cleanly (avoids a warning and a hang at interpreter exit)."""
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()
