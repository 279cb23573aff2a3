"""Embeddings of time and of input coordinates."""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Transformer positional encoding of a scalar per sample (Vaswani et al. 2017, sec. 3.5).

    `t` is scaled by 1000 first so that t ∈ [0, 1] spans the same frequencies as integer
    timesteps 0..999 do in DDPM. Returns (N, dim): [cos(t·ω_k), sin(t·ω_k)], ω_k = P^{-k/half}.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = (t.float() * 1000.0)[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=1)
    return emb


#: Up to this many input columns every feature sees all of them; above it each feature sees one column.
JOINT_COLUMNS = 2


class FourierFeatures(nn.Module):
    """Random Fourier features of input coordinates (Tancik et al. 2020, eq. 5), fixed, not trained.

    In 1-D and 2-D each feature projects all columns (Gaussian frequencies). With more columns each feature sees
    one column (feature j column j mod D), as NeRF encodes each coordinate on its own (Mildenhall et al. 2020,
    eq. 4): on the 4-column complex set (moons beside circles) joint frequencies blurred both halves, k-NN
    precision 0.924 against a floor of 1.000, and one column per feature drew them at 0.985
    (benchmarks/RESULTS-teachers.md). The frequencies are a buffer, saved with the weights.
    """

    def __init__(self, in_dim: int, num_features: int, scale: float = 1.0, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        freqs = torch.randn(in_dim, num_features, generator=g) * scale * 2 * math.pi
        if in_dim > JOINT_COLUMNS:
            freqs = freqs * (torch.arange(num_features)[None, :] % in_dim == torch.arange(in_dim)[:, None])
        self.register_buffer("freqs", freqs)

    @property
    def out_dim(self) -> int:
        return 2 * self.freqs.shape[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        proj = x @ self.freqs
        return torch.cat([torch.cos(proj), torch.sin(proj)], dim=1)
