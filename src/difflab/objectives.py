"""Training objectives: a target, a weighting over timesteps, and a per-element loss.

Every weighting is written once as a weight λ_t on ‖x_0 - x̂_0‖² and converted to the network's
target with `x0_error_scale` (Kingma et al. 2021, eq. 13; Hang et al. 2023, sec. 3.3), so the
ELBO weighting means the same thing whatever the network predicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F

from difflab.denoiser import Denoiser
from difflab.process import at, q_sample, target_from, x0_error_scale
from difflab.schedule import Schedule
from difflab.vlb import hybrid_vlb_loss

Weighting = Literal["simple", "elbo", "min_snr"]
WEIGHTINGS: tuple[str, ...] = get_args(Weighting)
LossKind = Literal["l2", "huber"]
LOSS_KINDS: tuple[str, ...] = get_args(LossKind)


def elbo_x0_weight(schedule: Schedule) -> torch.Tensor:
    """λ_t = ½(SNR_{t-1} - SNR_t): the KL term L_{t-1} per unit ‖x_0 - x̂_0‖² (Kingma et al. 2021, eq. 13).

    At t = 0, SNR_{-1} is infinite; that step is the decoder term -log N(x_0; x̂_0, β_0 I),
    whose weight is 1/(2β_0) (Ho et al. 2020, sec. 3.3, with σ²_1 = β_1).
    """
    snr = schedule.snr
    w = 0.5 * (torch.cat([snr[:1], snr[:-1]]) - snr)
    w[0] = 0.5 / schedule.betas[0]
    return w


def min_snr_x0_weight(schedule: Schedule, gamma: float) -> torch.Tensor:
    """λ_t = min(SNR_t, γ) (Hang et al. 2023, eq. 7)."""
    return schedule.snr.clamp(max=gamma)


def target_weight(weighting: Weighting, target: str, schedule: Schedule, *, gamma: float = 5.0) -> torch.Tensor:
    """Per-timestep weight on ‖y - ŷ‖² for a network predicting y = `target`, mean 1 over t.

    "simple" is uniform in the target's own space (Ho et al. 2020, eq. 14). The rescaling to
    mean 1 does not change the optimum (and Adam barely notices scale) but keeps logged losses
    comparable across weightings.
    """
    scale = x0_error_scale(target, schedule)  # type: ignore[arg-type]
    if weighting == "simple":
        w = torch.ones_like(scale)
    elif weighting == "elbo":
        w = elbo_x0_weight(schedule) * scale
    elif weighting == "min_snr":
        w = min_snr_x0_weight(schedule, gamma) * scale
    else:
        raise ValueError(f"unknown weighting {weighting!r}; choose one of {', '.join(WEIGHTINGS)}")
    return w / w.mean()


def elementwise_loss(kind: LossKind, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error, or Huber (δ = 1) on the unweighted error before the timestep weight."""
    if kind == "l2":
        return (pred - target) ** 2
    if kind == "huber":
        return F.huber_loss(pred, target, reduction="none", delta=1.0)
    raise ValueError(f"unknown loss {kind!r}; choose one of {', '.join(LOSS_KINDS)}")


#: λ of L_hybrid = L_simple + λ L_vlb (Nichol & Dhariwal 2021, sec. 3.1).
HYBRID_VLB_WEIGHT = 1e-3


@dataclass
class Objective:
    """A batch loss: sample t uniformly over 0..T-1 and ε, noise x_0, weight the target's error.

    With `vlb_weight` λ > 0 (a learned-variance denoiser) it adds λ L_vlb with a stop-gradient on the
    mean, so the variational term trains only the variance (Nichol & Dhariwal 2021, sec. 3.1).
    """

    weighting: Weighting = "simple"
    loss: LossKind = "l2"
    min_snr_gamma: float = 5.0
    vlb_weight: float = 0.0

    def __call__(
        self,
        denoiser: Denoiser,
        x0: torch.Tensor,
        cond: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Mean weighted loss over the batch; per-sample loss is the mean over features."""
        schedule = denoiser.schedule
        n = x0.shape[0]
        t = torch.randint(0, len(schedule), (n,), generator=generator, device=x0.device)
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        xt = q_sample(schedule, x0, t, noise)
        out = denoiser.raw(xt, t, cond)
        pred, _ = denoiser.split(out)
        goal = target_from(denoiser.target, schedule, xt, t, x0, noise)
        weights = target_weight(self.weighting, denoiser.target, schedule, gamma=self.min_snr_gamma)
        per_elem = elementwise_loss(self.loss, pred, goal) * at(weights, t, x0)
        loss = per_elem.flatten(1).mean(dim=1).mean()
        if self.vlb_weight > 0:
            loss = loss + self.vlb_weight * hybrid_vlb_loss(denoiser, x0, xt, t, out).mean()
        return loss
