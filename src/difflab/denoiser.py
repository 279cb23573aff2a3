"""Denoisers: a network plus its parameterization, seen by every sampler the same way.

A denoiser is any callable `(x_t, t) -> Prediction` where `t` holds trained model timesteps
(0..T-1, int64). Whatever the network predicts (x0, ε, v, score), the `Denoiser` adapter returns
predicted x_0 and ε; samplers never branch on the parameterization. Conditioning and
classifier-free guidance are wrappers that bind labels to a denoiser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn

from difflab.learned_schedule import LearnedScheduleModel
from difflab.process import eps_from_x0, x0_eps_from
from difflab.schedule import Schedule
from difflab.types import ClipKind, Target, choices

CLIP_KINDS: tuple[str, ...] = choices(ClipKind)

#: Saharia et al. 2022 (Imagen, sec. 2.3) use the 99.5th percentile of |x̂_0| for dynamic thresholding.
DYNAMIC_PERCENTILE = 0.995


@dataclass
class Prediction:
    """A denoiser's view of x_0 and ε at (x_t, t); `var_interp` ∈ [0, 1] if variance is learned."""

    x0: torch.Tensor
    eps: torch.Tensor
    var_interp: torch.Tensor | None = None


class DenoiserFn(Protocol):
    """What samplers call: predictions at trained model timesteps `t`."""

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> Prediction: ...


def clip_x0(x0: torch.Tensor, kind: ClipKind, percentile: float = DYNAMIC_PERCENTILE) -> torch.Tensor:
    """Keep predicted x_0 inside the data range [-1, 1] the model was trained on.

    ``clip`` clamps each value. ``dynamic`` is Saharia et al. 2022's dynamic thresholding (sec. 2.3):
    per sample, s = max(quantile_p |x̂_0|, 1); x̂_0 ← clamp(x̂_0, -s, s) / s, which pulls saturated
    samples inwards instead of flattening them against the boundary.
    """
    if kind == "none":
        return x0
    if kind == "clip":
        return x0.clamp(-1.0, 1.0)
    if kind == "dynamic":
        s = torch.quantile(x0.abs().flatten(1).float(), percentile, dim=1).clamp_min(1.0).to(x0.dtype)
        s = s.reshape(-1, *([1] * (x0.ndim - 1)))
        return x0.clamp(-s, s) / s
    raise ValueError(f"unknown clipping {kind!r}; choose one of {', '.join(CLIP_KINDS)}")


class Denoiser(nn.Module):
    """Wraps a network `model(x, t01, cond)` trained to predict `target` under `schedule`.

    The network sees time as t / (T-1) ∈ [0, 1], so it knows nothing about T. With
    `learned_variance` the network returns twice the data channels; the second half is mapped to
    v ∈ [0, 1] that interpolates log β̃_t and log β_t (Nichol & Dhariwal 2021, eq. 15).
    `clip` (a sampling choice; training never clips) keeps predicted x_0 in [-1, 1], the data range
    after normalization, by `clip_x0`, and recomputes ε from the clipped x_0.
    """

    def __init__(
        self,
        model: nn.Module,
        schedule: Schedule,
        target: Target,
        *,
        learned_variance: bool = False,
        clip: ClipKind = "none",
    ) -> None:
        super().__init__()
        self.model = model
        self.schedule = schedule
        self.target = target
        self.learned_variance = learned_variance
        self.clip = clip

    def refresh_schedule(self) -> None:
        """Re-discretize a schedule that lives in the weights (a learned γ) after they changed; else a no-op."""
        if isinstance(self.model, LearnedScheduleModel):
            self.schedule = self.model.schedule(len(self.schedule))

    def time_input(self, t: torch.Tensor) -> torch.Tensor:
        """Map model timesteps 0..T-1 to the network's float time in [0, 1]."""
        return t.float() / max(len(self.schedule) - 1, 1)

    def raw(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """The network's raw output (used by the training objective)."""
        return self.model(x, self.time_input(t), cond)

    def split(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Separate the prediction from the variance channels (if any)."""
        if not self.learned_variance:
            return out, None
        pred, v = out.chunk(2, dim=1)
        return pred, (v + 1.0) / 2.0

    def predict(self, x: torch.Tensor, t: torch.Tensor, out: torch.Tensor) -> Prediction:
        """Turn a raw network output at (x, t) into an unclipped Prediction."""
        pred, var_interp = self.split(out)
        x0, eps = x0_eps_from(self.target, self.schedule, x, t, pred)
        return Prediction(x0, eps, var_interp)

    def clipped(self, x: torch.Tensor, t: torch.Tensor, p: Prediction) -> Prediction:
        """Apply this denoiser's clipping to x̂_0 and make ε consistent with it at (x, t)."""
        if self.clip == "none":
            return p
        x0 = clip_x0(p.x0, self.clip)
        return Prediction(x0, eps_from_x0(self.schedule, x, t, x0), p.var_interp)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> Prediction:
        """Predict x_0 and ε at (x_t, t), optionally conditioned on class labels."""
        return self.clipped(x, t, self.predict(x, t, self.raw(x, t, cond)))


class Guided:
    """Classifier-free guidance around a conditional `Denoiser` (Ho & Salimans 2022, eq. 6).

    ε̃ = ε(x, ∅) + w·(ε(x, c) − ε(x, ∅)): w = 0 is unconditional, w = 1 plain conditional, w > 1
    sharpens. Ho & Salimans write ε̃ = (1 + w')·ε(x, c) − w'·ε(x, ∅), so our w is their 1 + w' (the
    convention of diffusers' `guidance_scale`; their w' = 0, plain conditional, is our w = 1). `labels` of
    None means unconditional (every sample gets the "no label" entry). The two predictions are combined
    unclipped and clipping is applied once to the result, as a sampler would clip a single model's prediction.
    x̂_0 is combined with the same weights as ε: x = √ᾱ x̂_0 + √(1-ᾱ) ε̂ holds for both predictions and the
    weights sum to 1, so it holds for the combination too, with no division by √ᾱ (≈ 0 at the noisiest step).
    """

    def __init__(self, denoiser: Denoiser, labels: torch.Tensor | None, weight: float, null_label: int) -> None:
        self.denoiser = denoiser
        self.labels = labels
        self.weight = float(weight)
        self.null_label = null_label

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> Prediction:
        null = torch.full((x.shape[0],), self.null_label, dtype=torch.int64, device=x.device)
        if self.labels is None or self.weight == 0.0:
            return self.denoiser(x, t, null)
        labels = self.labels.to(x.device)
        if self.weight == 1.0:
            return self.denoiser(x, t, labels)
        both = self.denoiser.raw(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null]))
        cond_out, null_out = both.chunk(2, dim=0)
        cond = self.denoiser.predict(x, t, cond_out)
        uncond = self.denoiser.predict(x, t, null_out)
        w = self.weight
        x0 = uncond.x0 + w * (cond.x0 - uncond.x0)
        eps = uncond.eps + w * (cond.eps - uncond.eps)
        return self.denoiser.clipped(x, t, Prediction(x0, eps, cond.var_interp))


class Unconditional:
    """Adapter for a denoiser without classes: binds cond = None."""

    def __init__(self, denoiser: Denoiser) -> None:
        self.denoiser = denoiser

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> Prediction:
        return self.denoiser(x, t, None)
