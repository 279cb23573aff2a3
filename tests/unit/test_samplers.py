"""Samplers against diffusers' schedulers (same ᾱ, same pseudo-model) and against exact Gaussian solutions."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler

from difflab.denoiser import Denoiser, Guided, Prediction, Unconditional
from difflab.process import TARGETS, x0_from_eps
from difflab.samplers import (
    SAMPLERS,
    sample_ddim,
    sample_ddpm,
    sample_dpmpp_2m,
    sample_dpmpp_2m_sde,
    sample_heun,
)
from difflab.schedule import Schedule, make_schedule, spaced_timesteps
from difflab.testing import ExactNetwork
from tests.helpers import GAUSS

T = 200


def pseudo_eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A fixed, smooth, non-trivial ε-"model" of (x, t)."""
    tt = t.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
    return torch.tanh(0.8 * x + 0.3 * torch.sin(tt / 37.0)) + 0.1 * torch.cos(tt / 11.0)


def pseudo_v(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """A fixed raw variance output in [-1, 1] (mapped to v ∈ [0, 1] by the denoiser)."""
    tt = t.to(x.dtype).reshape(-1, *([1] * (x.ndim - 1)))
    return torch.tanh(x.sum(dim=1, keepdim=True) + tt / 100.0 - 1.0).expand_as(x)


def matched_pair(**kwargs: object) -> tuple[Schedule, dict[str, object]]:
    """Our cosine schedule, and diffusers kwargs with the same betas; ours is rebuilt from diffusers' float32 ᾱ."""
    ours = make_schedule("cosine", T)
    return ours, {"num_train_timesteps": T, "trained_betas": ours.betas.numpy(), **kwargs}


def from_diffusers(scheduler: object) -> Schedule:
    return Schedule.from_alphas_cumprod(scheduler.alphas_cumprod.double())  # type: ignore[attr-defined]


def eps_denoiser(schedule: Schedule):
    def fn(x: torch.Tensor, t: torch.Tensor) -> Prediction:
        eps = pseudo_eps(x, t)
        return Prediction(x0_from_eps(schedule, x, t, eps), eps)

    return fn


def record(states: list[torch.Tensor]):
    return lambda d: states.append(d["x"].clone())


def x_T(seed: int = 0, n: int = 64) -> torch.Tensor:
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_matches_diffusers_step_by_step(eta: float) -> None:
    _, kw = matched_pair()
    ref = DDIMScheduler(**kw, clip_sample=False, set_alpha_to_one=True, timestep_spacing="trailing")
    full = from_diffusers(ref)
    ref.set_timesteps(10)
    schedule = full.respace(ref.timesteps.flip(0))
    ours: list[torch.Tensor] = []
    out = sample_ddim(
        eps_denoiser(full), x_T(), schedule, eta=eta, generator=torch.Generator().manual_seed(1), callback=record(ours)
    )
    gen, x, theirs = torch.Generator().manual_seed(1), x_T(), []
    for t in ref.timesteps:
        theirs.append(x)
        x = ref.step(pseudo_eps(x, t.expand(len(x))), t, x, eta=eta, generator=gen).prev_sample
    assert schedule.timesteps.tolist() == sorted(ref.timesteps.tolist())
    assert int(schedule.timesteps[-1]) == T - 1
    torch.testing.assert_close(ours[1], theirs[1], atol=1e-4, rtol=1e-4)  # one step from x_T
    torch.testing.assert_close(torch.stack(ours), torch.stack(theirs), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out, x, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(("variance", "kind"), [("small", "fixed_small"), ("learned", "learned_range")])
def test_ddpm_respaced_matches_diffusers(variance: str, kind: str) -> None:
    _, kw = matched_pair()
    ref = DDPMScheduler(**kw, clip_sample=False, variance_type=kind, timestep_spacing="trailing")
    full = from_diffusers(ref)
    ref.set_timesteps(20)
    schedule = full.respace(ref.timesteps.flip(0))

    def fn(x: torch.Tensor, t: torch.Tensor) -> Prediction:
        eps = pseudo_eps(x, t)
        return Prediction(x0_from_eps(full, x, t, eps), eps, (pseudo_v(x, t) + 1) / 2)

    ours: list[torch.Tensor] = []
    generator = torch.Generator().manual_seed(2)
    out = sample_ddpm(fn, x_T(), schedule, variance=variance, generator=generator, callback=record(ours))  # type: ignore[arg-type]
    gen, x, theirs = torch.Generator().manual_seed(2), x_T(), []
    for t in ref.timesteps:
        theirs.append(x)
        tt = t.expand(len(x))
        output = pseudo_eps(x, tt)
        if kind == "learned_range":
            output = torch.cat([output, pseudo_v(x, tt)], dim=1)
        x = ref.step(output, t, x, generator=gen).prev_sample
    torch.testing.assert_close(torch.stack(ours), torch.stack(theirs), atol=1e-4, rtol=1e-4)
    if variance == "small":  # diffusers adds noise of std 1e-10 at the last step; we return the mean
        torch.testing.assert_close(out, x, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("steps", [1, 2, 7, 25])
@pytest.mark.parametrize(
    ("algorithm", "sampler"), [("dpmsolver++", sample_dpmpp_2m), ("sde-dpmsolver++", sample_dpmpp_2m_sde)]
)
def test_dpmpp_2m_matches_diffusers(steps: int, algorithm: str, sampler: Callable[..., torch.Tensor]) -> None:
    """Same trajectory as diffusers' multistep DPM-Solver++; the SDE form draws its noise from the same generator."""
    _, kw = matched_pair()
    ref = DPMSolverMultistepScheduler(
        **kw, algorithm_type=algorithm, solver_order=2, lower_order_final=True, final_sigmas_type="zero"
    )
    full = from_diffusers(ref)
    schedule = full.respace(spaced_timesteps(T, steps, "trailing"))
    ref.set_timesteps(timesteps=schedule.timesteps.flip(0).tolist())
    ours: list[torch.Tensor] = []
    generator = torch.Generator().manual_seed(5)
    out = sampler(eps_denoiser(full), x_T(), schedule, generator=generator, callback=record(ours))
    gen, x, theirs = torch.Generator().manual_seed(5), x_T(), []
    for t in ref.timesteps:
        theirs.append(x)
        x = ref.step(pseudo_eps(x, t.expand(len(x))), t, x, generator=gen).prev_sample
    torch.testing.assert_close(torch.stack(ours), torch.stack(theirs), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(out, x, atol=1e-4, rtol=1e-4)


def test_the_sde_form_adds_noise_the_ode_form_does_not() -> None:
    _, kw = matched_pair()
    full = from_diffusers(DPMSolverMultistepScheduler(**kw))
    schedule = full.respace(spaced_timesteps(T, 7, "trailing"))
    ode = sample_dpmpp_2m(eps_denoiser(full), x_T(), schedule)
    sde = sample_dpmpp_2m_sde(eps_denoiser(full), x_T(), schedule, generator=torch.Generator().manual_seed(5))
    assert not torch.allclose(ode, sde, atol=1e-3)


def exact_denoiser(schedule: Schedule, target: str = "eps") -> Unconditional:
    return Unconditional(Denoiser(ExactNetwork(GAUSS, schedule, target), schedule, target))  # type: ignore[arg-type]


def lambda_even_errors(samplers: list[str], steps: list[int], n: int = 500) -> tuple[dict[str, list[float]], float]:
    """RMS distance to the exact ODE solution for each sampler at each step count, on steps even in λ of a fine
    (T = 10,000) cosine schedule with the exact ε denoiser; and the fitted order of the last sampler."""
    full = make_schedule("cosine", 10_000)
    lam = 0.5 * full.log_snr.numpy()
    x = torch.randn(n, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    exact = GAUSS.ode_solution(full, x)
    errors: dict[str, list[float]] = {name: [] for name in samplers}
    for k in steps:
        keep = sorted({int(np.abs(lam - v).argmin()) for v in np.linspace(lam[-1], lam[0], k + 1)})
        schedule = full.respace(keep)
        for name in samplers:
            out = SAMPLERS[name](exact_denoiser(full), x, schedule)
            errors[name].append(float((out - exact).pow(2).sum(1).mean().sqrt()))
    return errors, -float(np.polyfit(np.log(steps), np.log(errors[samplers[-1]]), 1)[0])


def ode_error_slope(sampler: str, steps: list[int]) -> tuple[list[float], float]:
    """RMS distance to the exact ODE solution per step count, and the fitted order -d log(err)/d log(K)."""
    full = make_schedule("cosine", 1000)
    x = torch.randn(500, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    exact = GAUSS.ode_solution(full, x)
    errors = []
    for k in steps:
        out = SAMPLERS[sampler](exact_denoiser(full), x, full.respace(spaced_timesteps(1000, k)))
        errors.append(float((out - exact).pow(2).sum(1).mean().sqrt()))
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    return errors, -float(slope)


@pytest.mark.parametrize(("sampler", "low", "high"), [("ddim", 0.9, 1.1), ("dpmpp_2m", 1.8, 2.6)])
def test_ode_error_order_with_exact_denoiser(sampler: str, low: float, high: float) -> None:
    """Measured at T = 1000 cosine, K = 20..160: DDIM slope 0.96, DPM-Solver++(2M) slope 2.2."""
    errors, order = ode_error_slope(sampler, [20, 40, 80, 160])
    assert all(b < a for a, b in itertools.pairwise(errors))
    assert low < order < high, (errors, order)


def test_ddpm_distribution_error_shrinks_with_steps() -> None:
    full = make_schedule("cosine", T)
    errors = []
    for k in (5, 20, T):
        x = torch.randn(5000, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
        schedule = full.respace(spaced_timesteps(T, k))
        out = sample_ddpm(exact_denoiser(full), x, schedule, generator=torch.Generator().manual_seed(6))
        errors.append(float(torch.linalg.norm(torch.cov(out.T) - GAUSS.cov)) + float((out.mean(0) - GAUSS.mean).norm()))
    # Measured 0.17, 0.07, 0.01 (sampling noise of 5000 draws ≈ 0.005). Even the full chain keeps an O(1/T) bias:
    # the true reverse kernel's variance exceeds β̃_t by the spread of the posterior of x_0.
    assert errors[0] > 1.5 * errors[1] > 1.5 * errors[2]
    assert errors[2] < 0.03


def test_ddim_eta_one_is_ddpm_with_small_variance() -> None:
    full = make_schedule("cosine", T)
    schedule = full.respace(spaced_timesteps(T, 13))
    a = sample_ddim(eps_denoiser(full), x_T(11).double(), schedule, eta=1.0, generator=torch.Generator().manual_seed(3))
    b = sample_ddpm(eps_denoiser(full), x_T(11).double(), schedule, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_every_target_gives_the_same_samples(sampler: str) -> None:
    full = make_schedule("cosine", T)
    schedule = full.respace(spaced_timesteps(T, 10))
    outs = []
    for target in TARGETS:
        x = x_T(7).double()
        generator = torch.Generator().manual_seed(8)
        outs.append(SAMPLERS[sampler](exact_denoiser(full, target), x, schedule, generator=generator))
    for out in outs[1:]:
        torch.testing.assert_close(out, outs[0], atol=1e-8, rtol=1e-8)


def test_guidance_with_identical_branches_is_a_no_op() -> None:
    full = make_schedule("cosine", T)
    schedule = full.respace(spaced_timesteps(T, 8))
    denoiser = Denoiser(ExactNetwork(GAUSS, full, "v"), full, "v")
    guided = Guided(denoiser, torch.zeros(64, dtype=torch.int64), 3.0, null_label=1)
    x = x_T(9).double()
    plain = sample_dpmpp_2m(Unconditional(denoiser), x, schedule)
    torch.testing.assert_close(sample_dpmpp_2m(guided, x, schedule), plain)


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_common_signature_callback_and_evaluations(sampler: str) -> None:
    full = make_schedule("cosine", T)
    schedule = full.respace([0, 5, 50, 120, T - 1])
    calls: list[int] = []

    def counting(x: torch.Tensor, t: torch.Tensor) -> Prediction:
        calls.append(int(t[0]))
        return exact_denoiser(full)(x, t)

    seen: list[dict[str, object]] = []
    generator = torch.Generator().manual_seed(0)
    out = SAMPLERS[sampler](counting, x_T(10), schedule, generator=generator, callback=seen.append)
    assert out.shape == (64, 2) and bool(torch.isfinite(out).all())
    assert [d["t"] for d in seen] == [T - 1, 120, 50, 5, 0]
    assert [d["i"] for d in seen] == [4, 3, 2, 1, 0]
    assert all(set(d) == {"i", "t", "x", "x0"} for d in seen)
    # Heun evaluates the model twice per step but once on the last (Euler) step; the others once per step.
    expected = [T - 1, 120, 120, 50, 50, 5, 5, 0, 0] if sampler == "heun" else [T - 1, 120, 50, 5, 0]
    assert calls == expected


def numpy_pseudo_eps(x: np.ndarray, t: int) -> np.ndarray:
    """`pseudo_eps` written again in numpy float64."""
    return np.tanh(0.8 * x + 0.3 * np.sin(t / 37.0)) + 0.1 * np.cos(t / 11.0)


def numpy_heun(x: np.ndarray, ab: np.ndarray, ts: list[int]) -> tuple[list[np.ndarray], np.ndarray]:
    """Karras et al. 2022, alg. 1 (deterministic Heun) on the probability-flow ODE dx̃/dσ̃ = ε̂ in x̃ = x/√ᾱ and
    σ̃ = √((1-ᾱ)/ᾱ), from σ̃_{K-1} down to σ̃ = 0; the last step, to σ̃ = 0, is Euler's. Returns the state at the
    start of every step and the result."""
    sig = np.sqrt((1 - ab) / ab)
    states = []
    for i in reversed(range(len(ab))):
        states.append(x)
        x_tilde = x / np.sqrt(ab[i])
        d = numpy_pseudo_eps(x, ts[i])
        if i == 0:
            return states, x_tilde + (0.0 - sig[0]) * d  # at σ̃ = 0, ᾱ = 1 and x = x̃
        euler = x_tilde + (sig[i - 1] - sig[i]) * d
        d_next = numpy_pseudo_eps(euler * np.sqrt(ab[i - 1]), ts[i - 1])
        x = (x_tilde + (sig[i - 1] - sig[i]) * (d + d_next) / 2) * np.sqrt(ab[i - 1])
    raise AssertionError("unreachable")


@pytest.mark.parametrize("keep", [[0, 5, 50, 120, T - 1], list(range(9, T, 10)), list(range(T))])
def test_heun_matches_a_numpy_reference_step_by_step(keep: list[int]) -> None:
    full = make_schedule("cosine", T)
    schedule = full.respace(keep)
    x = x_T(4).double()
    ours: list[torch.Tensor] = []
    out = sample_heun(eps_denoiser(full), x, schedule, callback=record(ours))
    states, expected = numpy_heun(x.numpy(), schedule.alphas_cumprod.numpy(), keep)
    assert len(ours) == len(states)
    for got, want in zip(ours, states, strict=True):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_a_single_sample_runs_with_a_callback(sampler: str) -> None:
    full = make_schedule("cosine", T)
    seen: list[int] = []
    x = x_T(12, n=1)
    out = SAMPLERS[sampler](
        exact_denoiser(full),
        x,
        full.respace([0, 50, T - 1]),
        generator=torch.Generator().manual_seed(0),
        callback=lambda d: seen.append(d["t"]),
    )
    assert out.shape == (1, 2) and seen == [T - 1, 50, 0]


@pytest.mark.parametrize(("sampler", "options"), [("ddim", {"eta": 0.0}), ("dpmpp_2m", {}), ("heun", {})])
def test_deterministic_samplers_draw_nothing_from_the_generator(sampler: str, options: dict[str, float]) -> None:
    """A caller's generator is left as it was: later draws from it do not depend on which ODE solver ran."""
    full = make_schedule("cosine", T)
    generator = torch.Generator().manual_seed(3)
    before = generator.get_state()
    SAMPLERS[sampler](exact_denoiser(full), x_T(13), full.respace([0, 50, T - 1]), generator=generator, **options)
    assert torch.equal(generator.get_state(), before)
