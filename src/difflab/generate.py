"""Draw any number of samples in fixed-size chunks, so memory stays bounded (100k points is fine)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from difflab.denoiser import DenoiserFn
from difflab.samplers import Callback
from difflab.schedule import Schedule

SamplerFn = Callable[..., torch.Tensor]


def generate(
    bind: Callable[[slice], DenoiserFn],
    sampler: SamplerFn,
    schedule: Schedule,
    n: int,
    shape: tuple[int, ...],
    *,
    seed: int = 0,
    chunk_size: int = 10_000,
    callback: Callback | None = None,
    device: torch.device | str = "cpu",
    **options: Any,
) -> torch.Tensor:
    """Sample `n` items of `shape`, chunk by chunk; returns a CPU float32 tensor (n, *shape).

    `bind(slice)` returns the denoiser for the samples in that slice (so per-sample labels follow
    their chunk). One generator seeded with `seed` drives every chunk, so the result depends only
    on the seed and chunk size.
    """
    generator = torch.Generator(device=device).manual_seed(seed)
    out = torch.empty((n, *shape), dtype=torch.float32)
    for start in range(0, n, chunk_size):
        part = slice(start, min(start + chunk_size, n))
        count = part.stop - part.start
        x_T = torch.randn((count, *shape), generator=generator, device=device)
        x0 = sampler(bind(part), x_T, schedule, generator=generator, callback=callback, **options)
        out[part] = x0.float().cpu()
    return out
