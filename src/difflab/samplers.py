"""Samplers: one plain function per algorithm, all with the same signature.

`sample_X(denoiser, x_T, schedule, *, generator=None, callback=None, **options) -> x_0`

`schedule` is the process to walk: the trained one, or a respaced subset of it
(`Schedule.respace`). Step i runs from x at `schedule.timesteps[i]` to step i-1 (the data when
i = 0); the previous step is always read from the realised arrays, never computed from a
stride. `callback` receives a dict with the step index `i`, model timestep `t`, the current `x`
and the predicted `x0`, after the step's prediction.

Samplers walk the variance-preserving frame x/s_t of the schedule (`difflab.schedule`): the noise levels they read
are ᾱ_t (and λ_t = log(α_t/σ_t), which no scale changes), and only the network sees x at the path's own scale.
Every solver here is unchanged by that rescaling (Karras et al. 2022, sec. 2, eq. 4), so one code path serves
every family of paths, and a flow run's Euler steps are its DDIM steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from difflab.denoiser import DenoiserFn, Prediction
from difflab.process import at, ddpm_log_variance
from difflab.schedule import Schedule
from difflab.types import SamplerName, VarianceKind, choices

Callback = Callable[[dict[str, Any]], None]


def _predict(denoiser: DenoiserFn, x: torch.Tensor, schedule: Schedule, i: int) -> tuple[torch.Tensor, Prediction]:
    """The denoiser's prediction at step i for the variance-preserving x (the network sees s_i x)."""
    t = schedule.timesteps[i].to(x.device).expand(x.shape[0])
    return t, denoiser(_at_scale(x, schedule, i), t)


def _at_scale(x: torch.Tensor, schedule: Schedule, i: int) -> torch.Tensor:
    """The path's own x_t at step i from the variance-preserving one."""
    return x if schedule.scales is None else float(schedule.scales[i]) * x


def _from_start(x: torch.Tensor, schedule: Schedule) -> torch.Tensor:
    """The variance-preserving frame of the starting x_T, given at the path's own scale."""
    return x if schedule.scales is None else x / float(schedule.scales[-1])


def _report(
    callback: Callback | None, schedule: Schedule, i: int, t: torch.Tensor, x: torch.Tensor, x0: torch.Tensor
) -> None:
    if callback is not None:
        callback({"i": i, "t": int(t[0]), "x": _at_scale(x, schedule, i), "x0": x0})


def _noise_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


@torch.no_grad()
def sample_ddpm(
    denoiser: DenoiserFn,
    x: torch.Tensor,
    schedule: Schedule,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    variance: VarianceKind = "small",
) -> torch.Tensor:
    """Ancestral sampling: x_{t-1} ~ N(μ̃_t(x_t, x̂_0), σ²_t) (Ho et al. 2020, alg. 2).

    The mean is the posterior mean of eq. 7 with the predicted x_0. The last step returns the
    mean itself: at i = 0 the posterior is a point mass on x̂_0.
    """
    x = _from_start(x, schedule)
    for i in reversed(range(len(schedule))):
        t, pred = _predict(denoiser, x, schedule, i)
        idx = torch.full((x.shape[0],), i, dtype=torch.int64)
        mean = at(schedule.posterior_mean_coef_x0, idx, x) * pred.x0 + at(schedule.posterior_mean_coef_xt, idx, x) * x
        _report(callback, schedule, i, t, x, pred.x0)
        if i == 0:
            x = mean
        else:
            log_var = ddpm_log_variance(schedule, idx, x, variance, pred.var_interp)
            x = mean + torch.exp(0.5 * log_var) * _noise_like(x, generator)
    return x


@torch.no_grad()
def sample_ddim(
    denoiser: DenoiserFn,
    x: torch.Tensor,
    schedule: Schedule,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
    eta: float = 0.0,
) -> torch.Tensor:
    """DDIM (Song et al. 2021, eq. 12): η = 0 deterministic, η = 1 ancestral-like.

    x_{t-1} = √ᾱ_{t-1} x̂_0 + √(1 - ᾱ_{t-1} - σ²) ε̂ + σ z,
    σ = η √((1 - ᾱ_{t-1}) / (1 - ᾱ_t)) √(1 - ᾱ_t / ᾱ_{t-1}) (eq. 16).
    """
    ab, ab_prev = schedule.alphas_cumprod, schedule.alphas_cumprod_prev
    x = _from_start(x, schedule)
    for i in reversed(range(len(schedule))):
        t, pred = _predict(denoiser, x, schedule, i)
        _report(callback, schedule, i, t, x, pred.x0)
        a, a_prev = float(ab[i]), float(ab_prev[i])
        sigma = eta * ((1 - a_prev) / (1 - a) * (1 - a / a_prev)) ** 0.5
        dir_coef = max(1 - a_prev - sigma**2, 0.0) ** 0.5
        x = a_prev**0.5 * pred.x0 + dir_coef * pred.eps
        if sigma > 0 and i > 0:
            x = x + sigma * _noise_like(x, generator)
    return x


@torch.no_grad()
def sample_dpmpp_2m(
    denoiser: DenoiserFn,
    x: torch.Tensor,
    schedule: Schedule,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """DPM-Solver++(2M): multistep 2nd order in the data prediction, in λ = log(α/σ) (Lu et al. 2022b, alg. 2).

    From step s to step t with h = λ_t - λ_s and r = h_prev / h:
    x_t = (σ_t/σ_s) x_s + α_t (1 - e^{-h}) D,  D = (1 + 1/(2r)) x̂0_s - 1/(2r) x̂0_prev  (D = x̂0_s on the
    first step). The last step, to the data (σ = 0, λ = ∞), is first order and returns x̂0 itself.
    `generator` is unused (the solver is deterministic); it keeps the common signature.
    """
    return _dpmpp_multistep(denoiser, x, schedule, callback, order=2, sde=False)


@torch.no_grad()
def sample_dpmpp_3m(
    denoiser: DenoiserFn,
    x: torch.Tensor,
    schedule: Schedule,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """DPM-Solver++(3M): the multistep solver of order 3 (Lu et al. 2022b, sec. 4; Lu et al. 2022a, eq. 3.5).

    The data prediction x̂0(λ) is expanded to second order in λ around the current step, its derivatives
    estimated from the last three predictions, and the exponential integrator solved exactly:
    x_t = (σ_t/σ_s) x_s - α_t φ₁ D₀ + α_t φ₂ D₁ - 2 α_t φ₃ D₂ with φ₁ = e^{-h} - 1, φ₂ = φ₁/h + 1,
    φ₃ = (φ₁ + h)/h² - ½ and D₂ ≈ ½h² x̂0'' (see `_multistep_update`; the reference implementations lack the 2).
    The first two steps use orders 1 and 2 (too few
    predictions yet), fewer than 15 steps end with order ≤ 2 before the last, first-order step to the data
    (as DPM-Solver recommends for stability). `generator` is unused.
    """
    return _dpmpp_multistep(denoiser, x, schedule, callback, order=3, sde=False)


@torch.no_grad()
def sample_dpmpp_2m_sde(
    denoiser: DenoiserFn,
    x: torch.Tensor,
    schedule: Schedule,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """SDE-DPM-Solver++(2M): the same multistep data prediction on the reverse SDE.

    The DPM-Solver authors' SDE variant (diffusers' `sde-dpmsolver++`, which the tests match step by
    step): the linear part of the reverse SDE is solved exactly in λ, as the ODE solver does for the ODE.

    x_t = (σ_t/σ_s) e^{-h} x_s + α_t (1 - e^{-2h}) D + σ_t √(1 - e^{-2h}) z, with D as in `sample_dpmpp_2m`.
    Its first-order step is the DDPM posterior step; fresh noise at each step corrects the network's
    error as the ancestral sampler does, which the ODE cannot (circles: `benchmarks/RESULTS-samplers.md`).
    """
    return _dpmpp_multistep(denoiser, x, schedule, callback, order=2, sde=True, generator=generator)


#: Below this many steps the multistep solvers drop to order ≤ 2 on the step before the last (Lu et al. 2022b).
LOW_ORDER_BELOW = 15


def _multistep_update(
    x: torch.Tensor,
    history: list[tuple[torch.Tensor, float]],
    lam_t: float,
    alpha_t: float,
    ratio: float,
    order: int,
) -> torch.Tensor:
    """One ODE step of DPM-Solver++ of `order` (1, 2 or 3) to λ_t from the newest prediction in `history`.

    `history` holds (x̂0, λ) of the last steps, newest last; `ratio` is σ_t/σ_s. With h = λ_t - λ_s and
    r_k = (λ_{s_k} - λ_{s_{k+1}})/h, D₁ and D₂ are the first and second divided differences of x̂0 in λ,
    scaled by h and h² (Lu et al. 2022a, sec. 3.3).
    """
    m0, lam_s = history[-1]
    h = lam_t - lam_s
    phi1 = math.expm1(-h)
    out = ratio * x - alpha_t * phi1 * m0
    if order == 1:
        return out
    m1, lam_1 = history[-2]
    r0 = (lam_s - lam_1) / h
    d1_0 = (m0 - m1) / r0
    if order == 2:
        return out - 0.5 * alpha_t * phi1 * d1_0  # the midpoint form of Lu et al. 2022b, alg. 2
    m2, lam_2 = history[-3]
    r1 = (lam_1 - lam_2) / h
    d1_1 = (m1 - m2) / r1
    d1 = d1_0 + (r0 / (r0 + r1)) * (d1_0 - d1_1)
    d2 = (d1_0 - d1_1) / (r0 + r1)
    phi2 = phi1 / h + 1.0
    phi3 = (phi1 + h) / h**2 - 0.5
    # D₂ estimates ½h² x̂0'' and the exponential integral weighs h² x̂0'' by -α_t φ₃, hence the 2. DPM-Solver's
    # reference code and diffusers weigh D₂ by φ₃ alone, which makes the step second order only
    # (tests/unit/test_dpmpp_3m.py: exact for x̂0 quadratic in λ; global error order ≈ 3.9 vs 2.8).
    return out + alpha_t * phi2 * d1 - 2.0 * alpha_t * phi3 * d2


def _dpmpp_multistep(
    denoiser: DenoiserFn,
    x: torch.Tensor,
    schedule: Schedule,
    callback: Callback | None,
    *,
    order: int,
    sde: bool,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The multistep recursion shared by the ODE solvers of order 2 and 3 and the SDE solver of order 2."""
    lam, alpha, sigma = _lambda_alpha_sigma(schedule)
    x = _from_start(x, schedule)
    history: list[tuple[torch.Tensor, float]] = []
    for i in reversed(range(len(schedule))):
        t, pred = _predict(denoiser, x, schedule, i)
        _report(callback, schedule, i, t, x, pred.x0)
        if i == 0:
            x = pred.x0
            continue
        # order is 2 or 3: the newest `order` predictions are all an update reads
        history = _remember(history, pred.x0, float(lam[i]), order)
        if not history:  # the ODE keeps x as the noise, the SDE draws it afresh
            x = _from_pure_noise(pred.x0, _noise_like(x, generator) if sde else x, alpha[i - 1], sigma[i - 1])
            continue
        k = min(order, len(history))
        if i == 1 and len(schedule) < LOW_ORDER_BELOW:
            k = min(k, 2)
        h = float(lam[i - 1] - lam[i])
        if not sde:
            x = _multistep_update(x, history, float(lam[i - 1]), float(alpha[i - 1]), float(sigma[i - 1] / sigma[i]), k)
            continue
        m0 = pred.x0
        d = m0
        if k == 2:
            m1, lam_1 = history[-2]
            half_inv_r = 0.5 * h / (float(lam[i]) - lam_1)
            d = (1.0 + half_inv_r) * m0 - half_inv_r * m1
        decay = float(sigma[i - 1] / sigma[i]) * math.exp(-h)
        x = decay * x - float(alpha[i - 1]) * math.expm1(-2 * h) * d
        x = x + float(sigma[i - 1]) * math.sqrt(-math.expm1(-2 * h)) * _noise_like(x, generator)
    return x


def _remember(
    history: list[tuple[torch.Tensor, float]], x0: torch.Tensor, lam: float, keep: int
) -> list[tuple[torch.Tensor, float]]:
    """The newest `keep` ≥ 2 predictions (x̂0, λ) a multistep solver reads, this one last.

    A prediction at pure noise (λ = -∞, a flow path's start) says nothing about how x̂0 moves with λ: it is left
    out, and the empty list tells the solver to take `_from_pure_noise`'s step.
    """
    return [*history[-(keep - 1) :], (x0, lam)] if math.isfinite(lam) else []


def _from_pure_noise(x0: torch.Tensor, noise: torch.Tensor, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """The step from σ_s = 1, α_s = 0 (h = ∞), the limit of every solver's first step: α_t x̂0 + σ_t·noise."""
    return float(alpha) * x0 + float(sigma) * noise


def _lambda_alpha_sigma(schedule: Schedule) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """λ = log(α/σ), α and σ of each step in the variance-preserving frame."""
    ab = schedule.alphas_cumprod
    return 0.5 * schedule.log_snr, ab.sqrt(), (1.0 - ab).sqrt()


@torch.no_grad()
def sample_heun(
    denoiser: DenoiserFn,
    x: torch.Tensor,
    schedule: Schedule,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Heun's 2nd-order method on the probability-flow ODE (Karras et al. 2022, alg. 1, deterministic).

    In x̃ = x/√ᾱ and σ̃ = √((1-ᾱ)/ᾱ) the ODE is dx̃/dσ̃ = ε̂ (Song et al. 2021, DDIM eq. 14); an Euler
    step of it is DDIM with η = 0. Heun averages ε̂ at both ends of the step, so K steps cost 2K - 1
    model evaluations: the last step, to σ̃ = 0, is an Euler step. A path that starts from pure noise (ᾱ = 0, a
    flow run) has σ̃ = ∞ there, so it is integrated in the linear interpolant's variables instead, x̃ = x/(α + σ)
    and τ = σ/(α + σ), where dx̃/dτ = ε̂ - x̂0: on the flow path that is the flow's own Heun step (Lipman et al.
    2023; Karras et al. 2022, alg. 1). `generator` is unused.
    """
    ab = schedule.alphas_cumprod
    if float(ab[-1]) == 0.0:
        scale = ab.sqrt() + (1.0 - ab).sqrt()
        time = (1.0 - ab).sqrt() / scale

        def velocity(p: Prediction) -> torch.Tensor:
            return p.eps - p.x0
    else:
        scale, time = ab.sqrt(), ((1.0 - ab) / ab).sqrt()

        def velocity(p: Prediction) -> torch.Tensor:
            return p.eps

    x = _from_start(x, schedule)
    for i in reversed(range(len(schedule))):
        t, pred = _predict(denoiser, x, schedule, i)
        _report(callback, schedule, i, t, x, pred.x0)
        if i == 0:
            x = pred.x0
            continue
        step = float(time[i - 1] - time[i])
        x_tilde = x / float(scale[i]) + step * velocity(pred)
        _, pred_next = _predict(denoiser, x_tilde * float(scale[i - 1]), schedule, i - 1)
        x_tilde = x / float(scale[i]) + step * 0.5 * (velocity(pred) + velocity(pred_next))
        x = x_tilde * float(scale[i - 1])
    return x


@torch.no_grad()
def sample_euler(
    denoiser: DenoiserFn,
    x: torch.Tensor,
    schedule: Schedule,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Euler's method on the probability-flow ODE, a flow run's natural sampler: x_s = x_t + (s - t)·û.

    With û = ε̂ - x̂0 on the interpolant x_t = (1 - t) x̂0 + t ε̂ the step lands on (1 - s) x̂0 + s ε̂, which is
    DDIM's deterministic step α_s x̂0 + σ_s ε̂ (Song et al. 2021, eq. 12 with η = 0); DDIM is Euler in any frame
    of the path, so this is that step under the name flow-matching users know. `generator` is unused.
    """
    return sample_ddim(denoiser, x, schedule, callback=callback)


@torch.no_grad()
def sample_consistency(
    denoiser: DenoiserFn,
    x: torch.Tensor,
    schedule: Schedule,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Multistep consistency sampling (Song et al. 2023, alg. 1): predict x̂0, noise it afresh to the next level.

    x_{t-1} = √ᾱ_{t-1} x̂_0 + √(1 - ᾱ_{t-1}) z with a new z at every step, one model call each; the last x̂_0 is the
    sample. It is what a consistency student (`difflab.distill`) samples with: its x̂_0 at any level is already a
    sample, and fresh noise lets a later step correct an earlier one's error instead of following it.
    """
    ab_prev = schedule.alphas_cumprod_prev
    x = _from_start(x, schedule)
    x0 = x
    for i in reversed(range(len(schedule))):
        t, pred = _predict(denoiser, x, schedule, i)
        _report(callback, schedule, i, t, x, pred.x0)
        x0 = pred.x0
        if i > 0:
            a_prev = float(ab_prev[i])
            x = a_prev**0.5 * x0 + (1 - a_prev) ** 0.5 * _noise_like(x0, generator)
    return x0


#: UniPC's B(h) (Zhao et al. 2023, sec. 3.2): "bh1" B(h) = h, "bh2" B(h) = e^h - 1 (bh1 was 3.5-22x off the full
#: chain at 10 calls; benchmarks/README.md, "Few-step sampling").
UNIPC_VARIANT = "bh2"


@torch.no_grad()
def sample_unipc(
    denoiser: DenoiserFn,
    x: torch.Tensor,
    schedule: Schedule,
    *,
    generator: torch.Generator | None = None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """UniPC-2: DPM-Solver++(2M)'s predictor and the UniC corrector (Zhao et al. 2023, alg. 2, data prediction).

    After the model is called at the predicted x_t, UniC redoes the step that led there with that prediction
    added to the differences, which raises the order by one at no extra model call; the corrected x_t and the
    prediction (made at the uncorrected x_t, so none is wasted) start the next step. The step to the data
    returns x̂0 as the other multistep solvers do. `generator` is unused.
    """
    lam, alpha, sigma = _lambda_alpha_sigma(schedule)
    x = _from_start(x, schedule)
    history: list[tuple[torch.Tensor, float]] = []  # (x̂0, λ) of the steps behind, newest last
    before: tuple[torch.Tensor, int] | None = None  # x and step index before the last predictor step
    for i in reversed(range(len(schedule))):
        t, pred = _predict(denoiser, x, schedule, i)
        _report(callback, schedule, i, t, x, pred.x0)
        if i == 0:
            x = pred.x0  # the step to the data needs no corrected x: it returns the prediction
            continue
        if before is not None and history:
            x_s, s = before
            ratio = float(sigma[i] / sigma[s])
            x = _unipc_update(x_s, history, float(lam[i]), float(alpha[i]), ratio, new=pred.x0)
        history = _remember(history, pred.x0, float(lam[i]), 2)
        before = (x, i)
        if not history:
            x = _from_pure_noise(pred.x0, x, alpha[i - 1], sigma[i - 1])
            continue
        x = _unipc_update(x, history, float(lam[i - 1]), float(alpha[i - 1]), float(sigma[i - 1] / sigma[i]))
    return x


def _unipc_update(
    x: torch.Tensor,
    history: list[tuple[torch.Tensor, float]],
    lam_t: float,
    alpha_t: float,
    ratio: float,
    *,
    new: torch.Tensor | None = None,
) -> torch.Tensor:
    """UniP (`new` None) or UniC (`new` the prediction at λ_t) from the newest step of `history` to λ_t.

    x_t = (σ_t/σ_s) x_s - α_t φ₁ m₀ - α_t B(h) Σ_k ρ_k D_k, φ₁ = e^{-h} - 1, D_k = (m_k - m₀)/r_k with
    r_k = (λ_k - λ_s)/h for the older predictions m_k and r = 1 for `new`; ρ solves Σ_k ρ_k r_k^{n-1} = g_n,
    g_n = n!·φ_{n+1}(h)/B(h) (Zhao et al. 2023, eq. 8 and alg. 2); one difference alone takes ρ = ½.
    """
    m0, lam_s = history[-1]
    h = lam_t - lam_s
    phi1 = math.expm1(-h)
    out = ratio * x - alpha_t * phi1 * m0
    points = [(m, (lam_k - lam_s) / h) for m, lam_k in history[:-1]]
    if new is not None:
        points.append((new, 1.0))
    if not points:
        return out
    b_h = phi1 if UNIPC_VARIANT == "bh2" else -h
    if len(points) == 1:
        rho = [0.5]
    else:
        g, phi_k, factorial = [], phi1 / -h - 1.0, 1
        for n in range(1, len(points) + 1):
            g.append(phi_k * factorial / b_h)
            factorial *= n + 1
            phi_k = phi_k / -h - 1.0 / factorial
        powers = torch.tensor([[r**n for _, r in points] for n in range(len(points))], dtype=torch.float64)
        rho = torch.linalg.solve(powers, torch.tensor(g, dtype=torch.float64)).tolist()
    correction = sum(weight * (m - m0) / r for weight, (m, r) in zip(rho, points, strict=True))
    return out - alpha_t * b_h * correction


SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "ddpm": sample_ddpm,
    "ddim": sample_ddim,
    "euler": sample_euler,
    "dpmpp_2m": sample_dpmpp_2m,
    "dpmpp_2m_sde": sample_dpmpp_2m_sde,
    "dpmpp_3m": sample_dpmpp_3m,
    "heun": sample_heun,
    "unipc": sample_unipc,
    "consistency": sample_consistency,
}
assert set(SAMPLERS) == set(choices(SamplerName))
