"""Students (`difflab.distill`): each objective against a rule written out here, the consistency sampler's update,
and the config and sampling defaults a student gets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from difflab.config import make_config
from difflab.data.normalize import MinMaxScaler
from difflab.data.training_set import DataInfo
from difflab.defaults import KindDefaults
from difflab.denoiser import Denoiser, Prediction
from difflab.distill import ConsistencyObjective, ReflowObjective, Teacher, TrajectoryObjective, build_distillation
from difflab.errors import UserError
from difflab.images.defaults import IMAGES
from difflab.model import TrainedModel, build_denoiser
from difflab.points.defaults import POINTS
from difflab.points.defaults import SAMPLING as POINT_SAMPLING
from difflab.process import target_coefficients
from difflab.samplers import sample_consistency, sample_dpmpp_2m
from difflab.sampling import SamplingOptions, resolve
from difflab.schedule import make_schedule, spaced_timesteps
from difflab.session import prepare, student_config

T = 64
SMALL = {"hidden": 16, "depth": 1, "fourier_features": 4, "timesteps": T}


def _teacher(chunk_size: int = 7, **options: object) -> Teacher:
    """A randomly initialized network is as good a teacher as any for the objectives' bookkeeping."""
    cfg = make_config({**SMALL, **options})
    info = DataInfo((2,), MinMaxScaler(np.zeros(2), np.ones(2)), None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        denoiser = build_denoiser(cfg, info).eval().requires_grad_(False)
    model = TrainedModel(cfg, info, denoiser)
    return Teacher(model, resolve(SamplingOptions(chunk_size=chunk_size), model, POINT_SAMPLING), "teacher", False)


def _student(teacher: Teacher, method: str, calls: int, **options: object) -> object:
    changes = {"teacher": "t", "distill_method": method, "student_steps": calls, "distill_pairs": 30, **options}
    cfg = make_config(changes, base=teacher.model.cfg)
    return build_distillation(cfg, teacher, None, torch.device("cpu"), seed=3)


def _loss(objective: object, denoiser: Denoiser, n: int = 256) -> float:
    generator = torch.Generator().manual_seed(1)
    return float(objective(denoiser, torch.zeros(n, 2), None, generator=generator).value.detach())  # type: ignore[operator]


class _Constant(nn.Module):
    """x̂0 = c everywhere for an x0 network: the exact denoiser of data that is the one point c."""

    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = nn.Parameter(torch.tensor(c))

    def forward(self, x: torch.Tensor, t01: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return torch.zeros_like(x) + self.c


def _constant_teacher(c: float, schedule: str) -> Teacher:
    cfg = make_config({**SMALL, "target": "x0", "schedule": schedule})
    info = DataInfo((2,), MinMaxScaler(np.zeros(2), np.ones(2)), None)
    model = TrainedModel(cfg, info, Denoiser(_Constant(c), make_schedule(schedule, T), "x0"))
    return Teacher(model, resolve(SamplingOptions(chunk_size=7), model, POINT_SAMPLING), "teacher", False)


@pytest.mark.parametrize("schedule", ["cosine", "flow"])
@pytest.mark.parametrize(("calls", "teacher_steps"), [(1, 1), (3, 3), (4, 12), (2, 20)])
def test_a_student_that_predicts_the_teachers_constant_x0_is_perfect(
    schedule: str, calls: int, teacher_steps: int
) -> None:
    """Data that is one point c: the teacher predicts x̂0 = c at every level, its trajectories are straight (every
    solver walks them exactly), and one DDIM step with x̂0 = c spans any number of them. So the teacher is its own
    perfect student for any K and any teacher steps, and a student predicting another point is not. 30 pairs drawn
    7 at a time: states regrouped out of order across chunks would pair one trajectory's x_t with another's."""
    teacher = _constant_teacher(0.3, schedule)
    objective = _student(teacher, "trajectory", calls, teacher_steps=teacher_steps)
    assert isinstance(objective, TrajectoryObjective)
    assert objective.states.shape == (calls + 1, 30, 2)
    assert _loss(objective, teacher.model.denoiser) < 1e-10
    assert _loss(objective, _constant_teacher(0.5, schedule).model.denoiser) > 1e-3


def test_the_trajectory_is_the_teachers_dpm_solver_walk_over_both_grids() -> None:
    """The states are DPM-Solver++(2M)'s x at the student's steps on the union of the teacher's quadratic steps and
    the student's, drawn here in one chunk straight from the sampler, and its final sample."""
    teacher = _teacher()
    objective = _student(teacher, "trajectory", 4, teacher_steps=10)
    assert isinstance(objective, TrajectoryObjective)
    grid = spaced_timesteps(T, 4, "trailing")
    keep = torch.unique(torch.cat([spaced_timesteps(T, 10, "quadratic"), grid]))
    noise = torch.randn((30, 2), generator=torch.Generator().manual_seed(3))
    seen: dict[int, torch.Tensor] = {}
    out = sample_dpmpp_2m(
        teacher.model.denoiser_for(),
        noise,
        teacher.model.schedule.respace(keep),
        callback=lambda s: seen.update({s["t"]: s["x"]}),
    )
    expected = torch.stack([out, *(seen[int(t)] for t in grid)])
    torch.testing.assert_close(objective.states, expected)


class _PairOracle(nn.Module):
    """A network that knows two coupled pairs, far apart, and outputs the target of the one x_t lies between."""

    def __init__(self, schedule: object, target: str, x0: torch.Tensor, noise: torch.Tensor) -> None:
        super().__init__()
        self.schedule, self.target, self.x0, self.noise = schedule, target, x0, noise
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor, t01: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        i = (t01 * (T - 1)).round().long()
        a, b = target_coefficients(self.target, self.schedule.alpha[i], self.schedule.sigma[i])  # type: ignore[attr-defined]
        which = (x.sum(dim=1) < 0).long()  # pair 0 lives at positive coordinates, pair 1 at negative ones
        return a[:, None].float() * self.x0[which] + b[:, None].float() * self.noise[which] + self.dummy


@pytest.mark.parametrize("target", ["v", "flow"])
def test_reflow_trains_on_the_coupled_pairs(target: str) -> None:
    """A network that predicts each pair's own target has zero reflow loss: the objective noises x0 with its own z,
    not with fresh noise (which would cost the oracle ‖b‖² ≈ 1 per step)."""
    schedule = make_schedule("flow" if target == "flow" else "cosine", T)
    x0 = torch.tensor([[3.0, 2.0], [-2.0, -3.0]])
    noise = torch.tensor([[0.5, 1.0], [-1.0, -0.5]])
    denoiser = Denoiser(_PairOracle(schedule, target, x0, noise), schedule, target)  # type: ignore[arg-type]
    objective = ReflowObjective(noise, x0, None, torch.tensor([T - 1]))
    assert _loss(objective, denoiser) < 1e-10
    swapped = ReflowObjective(noise.flip(0), x0, None, torch.tensor([T - 1]))
    assert _loss(swapped, denoiser) > 0.1


def test_consistency_is_anchored_at_the_teachers_prediction_of_the_data() -> None:
    """When the data is one point c the teacher predicts c everywhere, and so does the consistency function: a
    student predicting c has zero loss; one predicting c + 1 agrees with itself at every level but the first, where
    it meets the teacher's c: only those steps cost, each sqrt(d + c²) - c (pseudo-Huber, d = 2)."""
    schedule = make_schedule("cosine", T)
    teacher = Denoiser(_Constant(0.5), schedule, "x0")
    grid = spaced_timesteps(T, 16, "trailing")
    objective = ConsistencyObjective(teacher, grid, torch.tensor([15]))
    assert _loss(objective, Denoiser(_Constant(0.5), schedule, "x0")) < 1e-6
    shifted = _loss(objective, Denoiser(_Constant(1.5), schedule, "x0"), n=4096)
    c = 0.00054 * 2**0.5
    # half of each batch is drawn on the student's grid (never the first step), half over the 16 steps
    expected = 0.5 * (1 / 16) * ((2 + c * c) ** 0.5 - c)
    assert shifted == pytest.approx(expected, rel=0.15)  # 2,048 draws of a 1/16 chance: ±9% is 1.4 std errors


def test_consistency_sampling_noises_each_prediction_afresh() -> None:
    """x_{t-1} = √ᾱ_{t-1} x̂0 + √(1 - ᾱ_{t-1}) z with a new z per step, and the sample is the last x̂0."""
    schedule = make_schedule("cosine", T).respace(spaced_timesteps(T, 4))
    seen: list[dict[str, torch.Tensor]] = []
    calls = iter([1.0, 2.0, 3.0, 4.0])

    def denoiser(x: torch.Tensor, t: torch.Tensor) -> Prediction:
        x0 = torch.full_like(x, next(calls))
        return Prediction(x0, torch.zeros_like(x))

    x_T = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    out = sample_consistency(denoiser, x_T, schedule, generator=torch.Generator().manual_seed(7), callback=seen.append)
    torch.testing.assert_close(out, torch.full_like(x_T, 4.0))
    g = torch.Generator().manual_seed(7)
    for step, (state, x0) in enumerate(zip(seen[1:], (1.0, 2.0, 3.0), strict=True)):
        ab = float(schedule.alphas_cumprod[2 - step])
        z = torch.randn(5, 2, generator=g)
        torch.testing.assert_close(state["x"], ab**0.5 * x0 + (1 - ab) ** 0.5 * z)


def test_a_student_samples_in_its_calls_on_its_trailing_steps() -> None:
    teacher = _teacher()
    for method, sampler in (("trajectory", "ddim"), ("reflow", "ddim"), ("consistency", "consistency")):
        cfg = make_config({"teacher": "t", "student_steps": 3, "distill_method": method}, base=teacher.model.cfg)
        model = TrainedModel(cfg, teacher.model.info, teacher.model.denoiser)
        got = resolve(SamplingOptions(), model, POINT_SAMPLING)
        assert (got.sampler, got.steps, got.spacing) == (sampler, 3, "trailing")
        assert resolve(SamplingOptions(steps=8), model, POINT_SAMPLING).steps == 8


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"student_steps": 2}, "belongs to a student"),
        ({"teacher": "t", "student_steps": 0}, "at least 1"),
        ({"teacher": "t", "student_steps": 2, "target": "eps"}, "distill a run trained with target v"),
        ({"teacher": "t", "student_steps": 2, "schedule": "learned"}, "cannot be distilled"),
    ],
)
def test_student_configs_that_cannot_work_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(UserError, match=message):
        make_config(options)


def test_training_refuses_the_options_only_distilling_sets() -> None:
    with pytest.raises(UserError, match="teacher: set by distilling"):
        prepare("moons", None, {"teacher": "runs/x"})


@pytest.mark.parametrize(
    ("defaults", "teacher_steps", "given", "budget"),
    [
        (POINTS, 30_000, {}, 15_000),  # half the teacher's
        (POINTS, 4_000, {}, 4_000),  # never below the kind's least
        (POINTS, 30_000, {"steps": 300}, 300),  # the user's own
        (IMAGES, 3_000, {}, 500),  # images keep their fixed budget
    ],
)
def test_a_students_budget_follows_its_teacher(
    defaults: KindDefaults, teacher_steps: int, given: dict[str, int], budget: int
) -> None:
    teacher = make_config({"steps": teacher_steps})
    student = student_config(teacher, Path("runs/teacher"), defaults, 4, "trajectory", given)
    assert (student.steps, student.student_steps, student.lr) == (budget, 4, defaults.distilling["lr"])
