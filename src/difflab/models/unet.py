"""A small U-Net for C×H×W images, conditioned on time and class by scale/shift of its norms.

The layout follows Ho et al. 2020 (app. B): residual blocks with GroupNorm, two stride-2
downsamplings (28 → 14 → 7; a third would not divide 7), skip connections by concatenation and
optional self-attention at the lowest resolution. A shared time + class embedding sets a
per-channel scale and shift after each block's second norm: FiLM (Perez et al. 2018), called
AdaGN by Dhariwal & Nichol 2021 (sec. 3).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from difflab.models.embeddings import sinusoidal_embedding
from difflab.types import UNetSize, choices

UNET_SIZES: tuple[str, ...] = choices(UNetSize)

#: Two stride-2 downsamplings: image height and width must be divisible by this.
SIZE_MULTIPLE = 4


@dataclass(frozen=True)
class UNetSpec:
    """Widths and depth of a U-Net: channels per level = `channels` × `mults[level]`."""

    channels: int
    mults: tuple[int, int, int]
    blocks_per_level: int
    attention: bool
    dropout: float = 0.0


SPECS: dict[str, UNetSpec] = {
    # 0.82M parameters (one grey channel, 10 classes): fits a 15-minute CPU budget on 28×28 digits.
    "small": UNetSpec(channels=32, mults=(1, 2, 2), blocks_per_level=1, attention=True),
    # 5.35M parameters (likewise): for a GPU or a long CPU run.
    "base": UNetSpec(channels=64, mults=(1, 2, 2), blocks_per_level=2, attention=True, dropout=0.1),
}


def _norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 8 groups (Wu & He 2018), fewer when the width does not divide."""
    groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


def _zero(module: nn.Module) -> nn.Module:
    """Zero a layer's weights so its residual branch starts as the identity (Goyal et al. 2017)."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice; the embedding scales and shifts the second norm's output."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = _norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * out_ch)
        self.norm2 = _norm(out_ch)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Multi-head self-attention over all pixels, residual (Vaswani et al. 2017; Ho et al. 2020 app. B)."""

    def __init__(self, channels: int, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = _zero(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w).transpose(-1, -2).unbind(1)
        out = F.scaled_dot_product_attention(q, k, v)  # (n, heads, hw, c/heads)
        return x + self.proj(out.transpose(-1, -2).reshape(n, c, h, w))


class UNet(nn.Module):
    """ε/x0/v network for images (N, C, H, W) with H and W divisible by 4.

    Takes (x, t, cond) with t ∈ [0, 1] and cond int64 labels; index `num_classes` (or
    cond = None) is the learned "no label" entry used for classifier-free guidance.
    """

    def __init__(
        self,
        in_channels: int,
        *,
        size: UNetSize = "small",
        num_classes: int = 0,
        out_channels: int | None = None,
    ) -> None:
        super().__init__()
        if size not in SPECS:
            raise ValueError(f"unknown U-Net size {size!r}; choose one of {', '.join(UNET_SIZES)}")
        spec = SPECS[size]
        self.num_classes = num_classes
        ch = spec.channels
        emb_dim = 4 * ch
        self.time_dim = ch
        self.time_mlp = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.label_emb = nn.Embedding(num_classes + 1, emb_dim) if num_classes else None
        self.inp = nn.Conv2d(in_channels, ch, 3, padding=1)

        widths = [ch * m for m in spec.mults]
        last = len(widths) - 1
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips, cur = [], ch
        for level, width in enumerate(widths):
            blocks = nn.ModuleList()
            for _ in range(spec.blocks_per_level):
                blocks.append(ResBlock(cur, width, emb_dim, spec.dropout))
                cur = width
                skips.append(cur)
            self.down.append(blocks)
            if level < last:
                self.downsample.append(nn.Conv2d(cur, cur, 3, stride=2, padding=1))

        self.mid1 = ResBlock(cur, cur, emb_dim, spec.dropout)
        self.mid_attn = SelfAttention(cur) if spec.attention else nn.Identity()
        self.mid2 = ResBlock(cur, cur, emb_dim, spec.dropout)

        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level, width in reversed(list(enumerate(widths))):
            blocks = nn.ModuleList()
            for _ in range(spec.blocks_per_level):
                blocks.append(ResBlock(cur + skips.pop(), width, emb_dim, spec.dropout))
                cur = width
            self.up.append(blocks)
            if level > 0:
                self.upsample.append(nn.Conv2d(cur, widths[level - 1], 3, padding=1))
                cur = widths[level - 1]
        self.out_norm = _norm(cur)
        self.out = _zero(nn.Conv2d(cur, out_channels or in_channels, 3, padding=1))

    @property
    def null_label(self) -> int:
        """Index of the learned "no label" embedding."""
        return self.num_classes

    def embed(self, t: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """The shared embedding: MLP(sinusoid(t)) + label embedding, passed through SiLU once."""
        emb = self.time_mlp(sinusoidal_embedding(t, self.time_dim))
        if self.label_emb is not None:
            labels = cond if cond is not None else torch.full_like(t, self.null_label, dtype=torch.int64)
            emb = emb + self.label_emb(labels.long())
        return F.silu(emb)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Predict from x (N, C, H, W), t (N,) in [0, 1] and optional labels (N,)."""
        if x.shape[-1] % SIZE_MULTIPLE or x.shape[-2] % SIZE_MULTIPLE:
            raise ValueError(f"U-Net needs height and width divisible by {SIZE_MULTIPLE}, got {tuple(x.shape[-2:])}")
        emb = self.embed(t, cond).to(x.dtype)
        h = self.inp(x.contiguous(memory_format=torch.channels_last))  # oneDNN/cuDNN convs run faster NHWC
        skips = []
        for level, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h, emb)
                skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for level, blocks in enumerate(self.up):
            for block in blocks:
                h = block(torch.cat([h, skips.pop()], dim=1), emb)
            if level < len(self.upsample):
                h = self.upsample[level](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.out(F.silu(self.out_norm(h)))


def param_count(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
