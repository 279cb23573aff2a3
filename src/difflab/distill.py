"""Students: a trained run (the teacher) distilled into a run that samples in a few model calls.

The student is the teacher's network, started from the teacher's sampling (EMA) weights and trained by one of three
objectives behind the trainer's `Objective` interface (the teacher's weighting and loss options do not apply);
afterwards it is a normal run whose default sampling is its few calls (`difflab.sampling.STUDENT_SAMPLERS`).
Trajectory is the default: at equal cost it was the sharpest at every number of calls on every set measured
(benchmarks/distill.py, benchmarks/RESULTS-distill.md). docs/math.md ("Students") derives each.

trajectory (Salimans & Ho 2022, alg. 2, in one round as Berthelot et al. 2023's TRACT):
    the teacher walks from noise z over its own steps and the student's K, and its states at the student's steps
    are kept. At each of its steps the student learns the x̂0 whose one DDIM step lands on the teacher's state at
    the next; at the last, the teacher's sample. The noisy steps' targets are smooth in z; only the last is the
    teacher's whole map. A student is for its K.
reflow (Liu et al. 2023, "Flow straight and fast", sec. 2.3 and alg. 1; Luhman & Luhman 2021 for one step):
    the teacher's deterministic sampler maps noise z to x0 = Φ(z), once, for `distill_pairs` draws. The student
    trains on x_t = α_t x0 + σ_t z of these coupled pairs instead of independent ones. Where the coupling is a
    function, x_t names its pair, the best student predicts that pair's x0 at every t, and DDIM, which is exact
    along any curve α_t a + σ_t b, lands on Φ(z) from any level: K calls walk the teacher's map in K straight
    steps. This holds on every path (cosine and the flow's alike), so it is not only the flow's reflow.
consistency (Song et al. 2023, alg. 2, with Song & Dhariwal 2024's target network μ = 0 and pseudo-Huber metric):
    one DDIM step of the teacher from x_{t_{n+1}} (a noised data point) to t_n gives x̂_{t_n}; the student's x̂0 at
    x_{t_{n+1}} is pulled to its own x̂0 at x̂_{t_n}, with no gradient through that target. At t = 0 the target is
    x̂_{t_0} itself, so the chain of targets is anchored at the teacher's prediction of the data, and the
    student's x̂0 from any level becomes a sample; it samples with `samplers.sample_consistency`.

Reflow and consistency draw half of every batch's times on the grid the student samples on (its K trailing steps,
where it must be exact) and half anywhere on the T steps (reflow) or the consistency grid, so other step counts
still work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from difflab.config import TrainConfig
from difflab.denoiser import Denoiser
from difflab.model import TrainedModel
from difflab.objectives import Loss, elementwise_loss
from difflab.process import at, q_sample, target_from
from difflab.sampling import STUDENT_SPACING, Sampling, draw
from difflab.schedule import spaced_timesteps
from difflab.types import SamplerName, Spacing

#: Intervals of the consistency grid: the teacher's one DDIM step spans 1/128 of the trained steps (trailing, so
#: the grid holds every 1-, 2-, 4- and 8-step student grid of a T divisible by 8).
CONSISTENCY_INTERVALS = 128
#: Pseudo-Huber's c = 0.00054·√d (Song & Dhariwal 2024, sec. 3.3), for an item of d numbers.
PSEUDO_HUBER_C = 0.00054


@dataclass
class Teacher:
    """The run a student learns from: its sampling model, and the full chain that draws its reflow pairs."""

    model: TrainedModel
    sampling: Sampling
    path: str
    progress: bool | None = None  # a bar while the teacher draws (None: in a terminal or notebook)


def _half_on_grid(grid: torch.Tensor, anywhere: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Even positions of a batch of times on `grid` (uniformly), odd ones kept from `anywhere`."""
    n = anywhere.shape[0]
    on_grid = grid[torch.randint(0, len(grid), (n,), generator=generator, device=grid.device)]
    even = torch.arange(n, device=anywhere.device) % 2 == 0
    return torch.where(even, on_grid, anywhere)


def _target_loss(
    denoiser: Denoiser,
    xt: torch.Tensor,
    t: torch.Tensor,
    labels: torch.Tensor | None,
    x0: torch.Tensor,
    eps: torch.Tensor,
) -> Loss:
    """The denoising loss with uniform weight: the squared error of the network's own target for (x0, ε) at x_t."""
    pred, _ = denoiser.split(denoiser.raw(xt, t, labels))
    goal = target_from(denoiser.target, denoiser.schedule, xt, t, x0, eps)
    loss = elementwise_loss("l2", pred, goal).flatten(1).mean(dim=1).mean()
    return Loss(loss, loss.backward)


class _ClipsAllTogether:
    """A student's gradient is clipped as one group, as a denoising run's is."""

    def clip_groups(self, model: nn.Module) -> list[list[nn.Parameter]]:
        return [list(model.parameters())]


@dataclass
class ReflowObjective(_ClipsAllTogether):
    """The denoising loss on the teacher's coupled pairs (z, Φ(z)) instead of independent (ε, x0)."""

    noise: torch.Tensor
    x0: torch.Tensor
    labels: torch.Tensor | None
    grid: torch.Tensor

    def __call__(
        self,
        denoiser: Denoiser,
        x0: torch.Tensor,
        cond: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> Loss:
        """Mean squared error of the network's target on a batch of pairs (the data batch sets only the size)."""
        n, device = x0.shape[0], x0.device
        pick = torch.randint(0, len(self.x0), (n,), generator=generator, device=device)
        data, noise = self.x0[pick], self.noise[pick]
        labels = None if self.labels is None else self.labels[pick]
        schedule = denoiser.schedule
        anywhere = torch.randint(0, len(schedule), (n,), generator=generator, device=device)
        t = _half_on_grid(self.grid, anywhere, generator)
        return _target_loss(denoiser, q_sample(schedule, data, t, noise), t, labels, data, noise)


@dataclass
class TrajectoryObjective(_ClipsAllTogether):
    """Each of the student's K steps lands where the teacher's trajectory is at the next of the K levels."""

    states: torch.Tensor  # (K + 1, pairs, *item): the teacher's x at the student's steps, ascending; the data first
    labels: torch.Tensor | None
    grid: torch.Tensor  # the student's K steps, ascending

    def __call__(
        self,
        denoiser: Denoiser,
        x0: torch.Tensor,
        cond: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> Loss:
        """Mean squared error of the network's target for the x̂0 whose DDIM step hits the teacher's next state."""
        n, device = x0.shape[0], x0.device
        pick = torch.randint(0, self.states.shape[1], (n,), generator=generator, device=device)
        k = torch.randint(1, len(self.grid) + 1, (n,), generator=generator, device=device)
        x_high, x_low = self.states[k, pick], self.states[k - 1, pick]
        labels = None if self.labels is None else self.labels[pick]
        schedule = denoiser.schedule
        t, before = self.grid[k - 1], self.grid[(k - 2).clamp(min=0)]
        alpha, sigma = at(schedule.alpha, t, x_high), at(schedule.sigma, t, x_high)
        ratio = at(schedule.sigma, before, x_high) / sigma
        # DDIM: x_s = α_s x̂0 + σ_s (x_t - α_t x̂0)/σ_t, solved for x̂0; the last step's x̂0 is the teacher's sample
        x_hat = (x_low - ratio * x_high) / (at(schedule.alpha, before, x_high) - ratio * alpha)
        x_hat = torch.where((k == 1).reshape(-1, *([1] * (x0.ndim - 1))), x_low, x_hat)
        return _target_loss(denoiser, x_high, t, labels, x_hat, (x_high - alpha * x_hat) / sigma)


@dataclass
class ConsistencyObjective(_ClipsAllTogether):
    """Consistency distillation: the student's x̂0 at t_{n+1} equals its own x̂0 one teacher step later."""

    teacher: Denoiser
    grid: torch.Tensor  # ascending trained steps t_1 < ... < t_N; t_0 is the data
    student_grid: torch.Tensor  # the positions in `grid` of the steps the student samples on

    def __call__(
        self,
        denoiser: Denoiser,
        x0: torch.Tensor,
        cond: torch.Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> Loss:
        """Pseudo-Huber distance between x̂0 at t_{n+1} and the stopped-gradient x̂0 at the teacher's x̂_{t_n}."""
        n, device = x0.shape[0], x0.device
        k = torch.randint(0, len(self.grid), (n,), generator=generator, device=device)
        k = _half_on_grid(self.student_grid, k, generator)
        high, low = self.grid[k], self.grid[(k - 1).clamp(min=0)]
        at_data = (k == 0).reshape(-1, *([1] * (x0.ndim - 1)))
        schedule = denoiser.schedule
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=device)
        x_high = q_sample(schedule, x0, high, noise)
        with torch.no_grad():
            seen = self.teacher(x_high, high, cond)
            x_low = at(schedule.alpha, low, x0) * seen.x0 + at(schedule.sigma, low, x0) * seen.eps
            x_low = torch.where(at_data, seen.x0, x_low)
            goal = denoiser.predict(x_low, low, denoiser.raw(x_low, low, cond)).x0
            goal = torch.where(at_data, x_low, goal)
        pred = denoiser.predict(x_high, high, denoiser.raw(x_high, high, cond)).x0
        c = PSEUDO_HUBER_C * math.sqrt(x0[0].numel())
        distance = torch.sqrt((pred - goal).pow(2).flatten(1).sum(dim=1) + c * c) - c
        loss = distance.mean()
        return Loss(loss, loss.backward)


#: How the teacher walks to the trajectory student's targets: its own quadratic steps with the student's added, by
#: DPM-Solver++(2M), whose state at each step is the trajectory's (UniPC's corrector moves it after the call). On
#: moons at 64 steps DDIM on trailing steps lost 11% of recall (0.887), on quadratic steps none (0.995), and
#: DPM-Solver++(2M) kept it at 32 (RESULTS-distill.md).
TRAJECTORY_SAMPLER: SamplerName = "dpmpp_2m"
TRAJECTORY_SPACING: Spacing = "quadratic"


def student_grid(cfg: TrainConfig) -> torch.Tensor:
    """The trained steps a K-call student samples on (ascending)."""
    return spaced_timesteps(cfg.timesteps, cfg.student_steps, STUDENT_SPACING)


def teacher_pairs(
    teacher: Teacher, cfg: TrainConfig, labels: torch.Tensor | None, seed: int, *, keep: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """`cfg.distill_pairs` draws of noise z and the teacher's deterministic sample Φ(z), in model units.

    With `keep` (ascending trained steps) the teacher walks DPM-Solver++(2M) over `cfg.teacher_steps` quadratic
    steps and these, and the second result is its x at the end and at each of them, ascending:
    (len(keep) + 1, pairs, *item). A conditional teacher draws each pair for the label of a random training item,
    or (with probability `p_uncond`, as in training) for no label, at guidance 1: the student learns the
    conditional and the unconditional map, and guidance is applied when it samples.
    """
    generator = torch.Generator().manual_seed(seed)
    count = cfg.distill_pairs
    noise = torch.randn((count, *teacher.model.info.shape), generator=generator)
    chosen = None
    if labels is not None:
        chosen = labels.cpu()[torch.randint(0, len(labels), (count,), generator=generator)]
        drop = torch.rand(count, generator=generator) < cfg.p_uncond
        chosen = torch.where(drop, teacher.model.info.num_classes, chosen)
    sampling = replace(teacher.sampling, guidance=1.0)
    seen: list[torch.Tensor] = []

    def record(state: dict[str, torch.Tensor]) -> None:
        if keep is not None and bool((keep == int(state["t"])).any()):
            seen.append(state["x"].float().cpu())

    walk = None
    if keep is not None:
        own = spaced_timesteps(cfg.timesteps, min(max(cfg.teacher_steps, 1), cfg.timesteps), TRAJECTORY_SPACING)
        steps = torch.unique(torch.cat([own, keep]))
        walk = teacher.model.schedule.respace(steps)
        sampling = replace(sampling, sampler=TRAJECTORY_SAMPLER, steps=len(steps), spacing=TRAJECTORY_SPACING)
    x0 = draw(
        teacher.model,
        count,
        sampling,
        labels=chosen,
        noise=noise,
        what="teacher samples",
        callback=record,
        progress=teacher.progress,
        schedule=walk,
    )
    if keep is None:
        return noise, x0, chosen
    k = len(keep)
    if len(seen) % k:
        raise AssertionError("the teacher's trajectory missed a student step")
    # the callback saw each chunk's states from the noisiest step down: regroup them by step, ascending
    descending = [torch.cat(seen[j::k]) for j in range(k)]
    return noise, torch.stack([x0, *reversed(descending)]), chosen


def build_distillation(
    cfg: TrainConfig, teacher: Teacher, labels: torch.Tensor | None, device: torch.device, seed: int
) -> ReflowObjective | TrajectoryObjective | ConsistencyObjective:
    """The objective of a student config: reflow draws its pairs from the teacher here (deterministic in `seed`,
    so a resumed student draws the same ones)."""
    teacher.model.denoiser.to(device)
    grid = student_grid(cfg).to(device)
    if cfg.distill_method in ("reflow", "trajectory"):
        keep = grid.cpu() if cfg.distill_method == "trajectory" else None
        noise, x0, chosen = teacher_pairs(teacher, cfg, labels, seed, keep=keep)
        chosen = None if chosen is None else chosen.to(device)
        if keep is not None:
            return TrajectoryObjective(x0.to(device), chosen, grid)
        return ReflowObjective(noise.to(device), x0.to(device), chosen, grid)
    steps = spaced_timesteps(cfg.timesteps, min(CONSISTENCY_INTERVALS, cfg.timesteps), STUDENT_SPACING).to(device)
    positions = torch.searchsorted(steps, grid)
    if not bool((steps[positions.clamp(max=len(steps) - 1)] == grid).all()):
        steps = torch.unique(torch.cat([steps, grid]))  # a T that the grids do not divide: add the student's steps
        positions = torch.searchsorted(steps, grid)
    return ConsistencyObjective(teacher.model.denoiser, steps, positions)
