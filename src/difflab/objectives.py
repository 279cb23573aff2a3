"""Training objectives behind one interface: `objective(denoiser, x0, cond, generator=...) -> Loss`.

A `Loss` carries its value (for logging) and how to turn it into gradients, so the trainer never asks which
objective it runs. `DenoisingObjective` is a target, a weighting over timesteps and a per-element loss: every
weighting is written once as a weight λ_t on ‖x_0 - x̂_0‖² and converted to the network's target with
`x0_error_scale` (Kingma et al. 2021, eq. 13; Hang et al. 2023, sec. 3.3), so the ELBO weighting means the
same thing whatever the network predicts. `VDMObjective` trains a network and its learned schedule on the
continuous-time bound (Kingma et al. 2021).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from difflab.denoiser import Denoiser
from difflab.learned_schedule import LearnedScheduleModel, vdm_gradients, vdm_terms
from difflab.process import at, q_sample, target_coefficients, target_from, x0_error_factor, x0_error_scale
from difflab.schedule import NoisePath, Schedule
from difflab.types import LossKind, Target, Weighting, choices
from difflab.vlb import hybrid_vlb_loss

WEIGHTINGS: tuple[str, ...] = choices(Weighting)
LOSS_KINDS: tuple[str, ...] = choices(LossKind)


@dataclass
class Loss:
    """A batch loss (a scalar, for logging) and `backward()`, which sets the gradients it implies."""

    value: torch.Tensor
    backward: Callable[[], None]


class Objective(Protocol):
    """What the trainer calls each step, and how it groups parameters for gradient clipping."""

    def __call__(
        self, denoiser: Denoiser, x0: torch.Tensor, cond: torch.Tensor | None, *, generator: torch.Generator | None
    ) -> Loss: ...

    def clip_groups(self, model: nn.Module) -> list[list[nn.Parameter]]: ...


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


def target_weight(weighting: Weighting, target: Target, schedule: Schedule, *, gamma: float = 5.0) -> torch.Tensor:
    """Per-timestep weight on ‖y - ŷ‖² for a network predicting y = `target`, mean 1 over t.

    "simple" is uniform in the target's own space (Ho et al. 2020, eq. 14). The rescaling to
    mean 1 does not change the optimum (and Adam barely notices scale) but keeps logged losses
    comparable across weightings.
    """
    scale = x0_error_scale(target, schedule)
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


@dataclass
class DenoisingObjective:
    """Sample t uniformly over 0..T-1 and ε, noise x_0, weight the target's error.

    With `vlb_weight` λ > 0 (a learned-variance denoiser) it adds λ L_vlb with a stop-gradient on the
    mean, so the variational term trains only the variance (Nichol & Dhariwal 2021, sec. 3.1). With a `path`, t is
    drawn uniformly from (0, 1] instead and the noise levels come from the path's closed form (`NoisePath`): the
    network then sees every time between the T steps, as continuous-time training does (Kingma et al. 2021,
    sec. 4; Lipman et al. 2023), and samples on the same T-step grid as a discrete run.
    """

    weighting: Weighting = "simple"
    loss: LossKind = "l2"
    min_snr_gamma: float = 5.0
    vlb_weight: float = 0.0
    path: NoisePath | None = None

    def __call__(
        self,
        denoiser: Denoiser,
        x0: torch.Tensor,
        cond: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> Loss:
        """Mean weighted loss over the batch; per-sample loss is the mean over features."""
        if self.path is not None:
            return self._continuous(self.path, denoiser, x0, cond, generator)
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
        return Loss(loss, loss.backward)

    def _continuous(
        self,
        path: NoisePath,
        denoiser: Denoiser,
        x0: torch.Tensor,
        cond: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> Loss:
        """The loss at t ~ U(0, 1]: the network sees timestep tT - 1, which is step i at t = (i + 1)/T."""
        steps = len(denoiser.schedule)
        u = 1.0 - torch.rand(x0.shape[0], generator=generator, device=x0.device)
        alpha, sigma = path.alpha_sigma(u.double().cpu())
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        a, b = target_coefficients(denoiser.target, alpha, sigma)
        weights = self._weights(denoiser, alpha, sigma)

        def column(values: torch.Tensor) -> torch.Tensor:
            return values.to(x0.dtype).to(x0.device).reshape(-1, *([1] * (x0.ndim - 1)))

        xt = column(alpha) * x0 + column(sigma) * noise
        pred, _ = denoiser.split(denoiser.raw(xt, u.double() * steps - 1.0, cond))
        goal = column(a) * x0 + column(b) * noise
        loss = (elementwise_loss(self.loss, pred, goal) * column(weights)).flatten(1).mean(dim=1).mean()
        return Loss(loss, loss.backward)

    def _weights(self, denoiser: Denoiser, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """`target_weight` at continuous noise levels, scaled by the same constant as on the T steps."""
        if self.weighting == "simple":
            return torch.ones_like(alpha)
        if self.weighting != "min_snr":
            raise ValueError(
                f"weighting {self.weighting!r} is defined per step; continuous time takes simple or min_snr"
            )
        schedule, target = denoiser.schedule, denoiser.target
        norm = (min_snr_x0_weight(schedule, self.min_snr_gamma) * x0_error_scale(target, schedule)).mean()
        snr = (alpha / sigma) ** 2
        return snr.clamp(max=self.min_snr_gamma) * x0_error_factor(target, alpha, sigma) / norm

    def clip_groups(self, model: nn.Module) -> list[list[nn.Parameter]]:
        """All parameters clipped together."""
        return [list(model.parameters())]


@dataclass
class VDMObjective:
    """The continuous-time VDM bound in nats per dimension, for a network and its learned γ (`LearnedScheduleModel`).

    Gradients come from two gradient calls (`vdm_gradients`): the bound for the network and γ's endpoints, the
    estimator's second moment for γ's shape. The network may be wrapped (autocast, compile) in the denoiser
    passed in; γ is always read from `model`, in float32.
    """

    model: LearnedScheduleModel
    target: Target
    params: list[nn.Parameter] = field(init=False)

    def __post_init__(self) -> None:
        self.params = list(self.model.parameters())

    def __call__(
        self,
        denoiser: Denoiser,
        x0: torch.Tensor,
        cond: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> Loss:
        gamma = self.model.gamma
        terms = vdm_terms(denoiser.model, gamma, self.target, x0, cond, generator=generator)
        vlb = terms.total.mean() / x0[0].numel()

        def backward() -> None:
            for p, grad in zip(self.params, vdm_gradients(terms, vlb, self.params, gamma), strict=True):
                if grad is not None:
                    p.grad = grad if p.grad is None else p.grad + grad

        return Loss(vlb, backward)

    def clip_groups(self, model: nn.Module) -> list[list[nn.Parameter]]:
        """γ's shape apart from the rest: it follows the second moment of the loss estimate, another objective on
        another scale, so a joint norm would let it shrink the network's step."""
        shape_ids = {id(p) for p in self.model.gamma.shape_parameters()}
        params = list(model.parameters())
        return [[p for p in params if id(p) not in shape_ids], [p for p in params if id(p) in shape_ids]]


#: λ of L_hybrid = L_simple + λ L_vlb (Nichol & Dhariwal 2021, sec. 3.1).
HYBRID_VLB_WEIGHT = 1e-3


def build_objective(
    model: nn.Module,
    target: Target,
    *,
    weighting: Weighting = "simple",
    loss: LossKind = "l2",
    min_snr_gamma: float = 5.0,
    learned_variance: bool = False,
    path: NoisePath | None = None,
) -> Objective:
    """The objective a model trains on: the VDM bound when its schedule is learned, else the denoising loss (in
    continuous time along `path` when one is given)."""
    if isinstance(model, LearnedScheduleModel):
        return VDMObjective(model, target)
    vlb_weight = HYBRID_VLB_WEIGHT if learned_variance else 0.0
    return DenoisingObjective(weighting, loss, min_snr_gamma, vlb_weight, path)
