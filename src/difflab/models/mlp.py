"""The MLP for point data (any dimension D)."""

from __future__ import annotations

import torch
from torch import nn

from difflab.models.embeddings import FourierFeatures, sinusoidal_embedding
from difflab.types import TimeEmbedding, choices

TIME_EMBEDDINGS: tuple[str, ...] = choices(TimeEmbedding)


class MLP(nn.Module):
    """Residual MLP taking (x, t, label).

    ``time_embedding="scalar"`` is the series' Part 1 model: t ∈ [0, 1] is appended to x as one
    more input. ``"sinusoidal"`` embeds t (Vaswani et al.) and adds a projection of it to every
    hidden layer. With `num_classes` > 0 a label embedding with one extra "no label" entry (index
    `num_classes`) is added the same way, for classifier-free guidance.
    """

    def __init__(
        self,
        data_dim: int,
        *,
        hidden: int = 128,
        depth: int = 3,
        time_embedding: TimeEmbedding = "scalar",
        time_dim: int = 32,
        fourier_features: int = 0,
        num_classes: int = 0,
        out_dim: int | None = None,
    ) -> None:
        super().__init__()
        if time_embedding not in TIME_EMBEDDINGS:
            raise ValueError(f"unknown time embedding {time_embedding!r}; choose one of {TIME_EMBEDDINGS}")
        self.time_embedding = time_embedding
        self.time_dim = time_dim
        self.num_classes = num_classes
        self.fourier = FourierFeatures(data_dim, fourier_features) if fourier_features else None
        in_dim = data_dim + (self.fourier.out_dim if self.fourier else 0)
        if time_embedding == "scalar":
            in_dim += 1
        self.inp = nn.Linear(in_dim, hidden)
        self.layers = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(depth))
        self.time_proj = (
            nn.Sequential(nn.Linear(time_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
            if time_embedding == "sinusoidal"
            else None
        )
        self.label_emb = nn.Embedding(num_classes + 1, hidden) if num_classes else None
        self.out = nn.Linear(hidden, out_dim or data_dim)
        self.act = nn.SiLU()

    @property
    def null_label(self) -> int:
        """Index of the learned "no label" embedding."""
        return self.num_classes

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Predict from x (N, D), t (N,) in [0, 1] and optional labels (N,) int64."""
        feats = [x]
        if self.fourier is not None:
            feats.append(self.fourier(x))
        if self.time_embedding == "scalar":
            feats.append(t.to(x.dtype)[:, None])
        h = self.inp(torch.cat(feats, dim=1))
        extra = torch.zeros_like(h)
        if self.time_proj is not None:
            extra = extra + self.time_proj(sinusoidal_embedding(t, self.time_dim).to(x.dtype))
        if self.label_emb is not None:
            labels = cond if cond is not None else torch.full_like(t, self.null_label, dtype=torch.int64)
            extra = extra + self.label_emb(labels.long())
        for layer, norm in zip(self.layers, self.norms, strict=True):
            h = h + layer(self.act(norm(h + extra)))
        return self.out(self.act(h))
