"""Continuous-time paths and the flow path: closed forms against the tables, and the samplers on a scaled path.

The flow path x_t = (1 - t) x_0 + t ε is a variance-preserving path seen at the scale s_t = √((1-t)² + t²). The
samplers walk the variance-preserving frame; these tests check them against the flow's own update rules written
out here in its own frame, and against the exact ODE solution for Gaussian data.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from difflab.denoiser import Denoiser, Unconditional
from difflab.process import posterior_mean, q_sample, target_from, x0_eps_from
from difflab.samplers import SAMPLERS, sample_euler, sample_heun
from difflab.schedule import SCHEDULE_NAMES, NoisePath, Schedule, make_schedule, spaced_timesteps
from difflab.testing import ExactNetwork
from tests.helpers import GAUSS

T = 200


def test_the_flow_schedule_is_the_linear_interpolant_ending_in_pure_noise() -> None:
    s = make_schedule("flow", T)
    t = torch.arange(1, T + 1, dtype=torch.float64) / T
    torch.testing.assert_close(s.alpha, 1 - t, rtol=0, atol=1e-15)
    torch.testing.assert_close(s.sigma, t, rtol=0, atol=1e-14)  # √(1 - ᾱ) near ᾱ = 1 loses a few digits
    assert s.terminal_alpha_bar == 0.0 and float(s.scale[-1]) == 1.0
    assert float(s.log_snr[-1]) == -np.inf and bool((s.log_snr[1:] < s.log_snr[:-1]).all())


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_each_table_is_its_path_at_t_i_plus_one_over_T(name: str) -> None:
    """The closed forms α(t), σ(t) at t = (i+1)/T give today's tables: exactly where the table is f(t)/f(0) (cosine,
    sigmoid, flow; up to the clipped last β), and to the first order of the β-sum where it is a product of
    (1 - β) (linear, series)."""
    steps = 200 if name == "series" else 1000
    path = NoisePath(name, steps)
    table = path.schedule()
    t = torch.arange(1, steps + 1, dtype=torch.float64) / steps
    alpha, sigma = path.alpha_sigma(t)
    tolerance = 5e-3 if name in ("linear", "series") else 1e-9
    unclipped = slice(0, steps - 3)
    torch.testing.assert_close(alpha[unclipped], table.alpha[unclipped], rtol=0, atol=tolerance)
    torch.testing.assert_close(sigma[unclipped], table.sigma[unclipped], rtol=0, atol=tolerance)
    if name != "flow":
        torch.testing.assert_close(alpha**2 + sigma**2, torch.ones_like(t), rtol=0, atol=1e-12)
    lam = path.log_snr(t)
    assert bool((lam[1:] < lam[:-1]).all())


def test_respacing_keeps_the_scales() -> None:
    full = make_schedule("flow", T)
    keep = spaced_timesteps(T, 7, "linspace")
    part = full.respace(keep)
    torch.testing.assert_close(part.alpha, full.alpha[keep], rtol=0, atol=0)
    torch.testing.assert_close(part.sigma, full.sigma[keep], rtol=0, atol=0)


def test_the_posterior_mean_on_a_scaled_path_is_the_general_gaussian_one() -> None:
    """q(x_s | x_t, x_0) for x_t = α_t x_0 + σ_t ε: mean (α_{t|s} σ_s²/σ_t²) x_t + (α_s σ²_{t|s}/σ_t²) x_0 with
    α_{t|s} = α_t/α_s, σ²_{t|s} = σ_t² - α²_{t|s} σ_s² (Kingma et al. 2021, eq. 3-4), written independently;
    `posterior_mean` works in the variance-preserving frame, x/s at both ends."""
    s = make_schedule("flow", T)
    g = torch.Generator().manual_seed(0)
    x0, xt = torch.randn(6, 2, generator=g, dtype=torch.float64), torch.randn(6, 2, generator=g, dtype=torch.float64)
    i = torch.tensor([1, 5, 50, 120, 198, 199])
    a_t, s_t, a_s, s_s = s.alpha[i], s.sigma[i], s.alpha[i - 1], s.sigma[i - 1]
    a_ts = a_t / a_s
    var_ts = s_t**2 - a_ts**2 * s_s**2
    expected = (a_ts * s_s**2 / s_t**2)[:, None] * xt + (a_s * var_ts / s_t**2)[:, None] * x0
    vp = posterior_mean(s, x0, xt / s.scale[i][:, None], i)
    torch.testing.assert_close(vp * s.scale[i - 1][:, None], expected, rtol=1e-10, atol=1e-12)


def pseudo_velocity(x: torch.Tensor, t01: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
    """A fixed, smooth "flow network" of (x, t)."""
    tt = t01.to(x.dtype).reshape(-1, 1)
    return torch.tanh(0.7 * x + tt) - 0.4 * x * tt


def flow_denoiser(schedule: Schedule) -> Unconditional:
    return Unconditional(Denoiser(pseudo_velocity, schedule, "flow"))  # type: ignore[arg-type]


def flow_times(schedule: Schedule) -> list[float]:
    """The flow's own time t of each kept step, noisiest first, then 0 (the data)."""
    return [float(v) for v in schedule.sigma.flip(0)] + [0.0]


def network_time(schedule: Schedule, t: float) -> torch.Tensor:
    """What the denoiser feeds the network at the flow's time t: the timestep (tT - 1) over T - 1, in float32."""
    return torch.tensor([round(t * T - 1)]).float() / (T - 1)


@pytest.mark.parametrize("steps", [1, 4, 10])
def test_euler_is_the_flow_step_x_plus_dt_times_u(steps: int) -> None:
    """diffusers' FlowMatchEulerDiscreteScheduler writes x ← x + (t_next - t)·u; sample_euler must give the same."""
    schedule = make_schedule("flow", T).respace(spaced_timesteps(T, steps, "linspace"))
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    out = sample_euler(flow_denoiser(make_schedule("flow", T)), x, schedule)
    times = flow_times(schedule)
    for t, t_next in itertools.pairwise(times):
        x = x + (t_next - t) * pseudo_velocity(x, network_time(schedule, t))
    torch.testing.assert_close(out, x, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("steps", [2, 6])
def test_heun_on_the_flow_path_is_the_flow_s_own_heun_step(steps: int) -> None:
    """x ← x + Δt·½(u(x, t) + u(x + Δt·u, t_next)), then a final Euler step to t = 0 (Karras et al. 2022, alg. 1)."""
    full = make_schedule("flow", T)
    schedule = full.respace(spaced_timesteps(T, steps, "linspace"))
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    out = sample_heun(flow_denoiser(full), x, schedule)
    times = flow_times(schedule)
    for t, t_next in itertools.pairwise(times):
        u = pseudo_velocity(x, network_time(schedule, t))
        if t_next == 0.0:
            x = x - t * u
            continue
        guess = x + (t_next - t) * u
        x = x + (t_next - t) * 0.5 * (u + pseudo_velocity(guess, network_time(schedule, t_next)))
    torch.testing.assert_close(out, x, rtol=1e-9, atol=1e-10)


def exact_flow_denoiser(schedule: Schedule) -> Unconditional:
    return Unconditional(Denoiser(ExactNetwork(GAUSS, schedule, "flow"), schedule, "flow"))  # type: ignore[arg-type]


@pytest.mark.parametrize("sampler", ["euler", "heun", "dpmpp_2m", "dpmpp_3m", "unipc"])
def test_ode_solvers_on_the_flow_path_converge_to_the_exact_map(sampler: str) -> None:
    """An exact flow network for Gaussian data: each ODE solver's error falls as its steps grow, to under 1e-2."""
    full = make_schedule("flow", 1000)
    x = torch.randn(400, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    exact = GAUSS.ode_solution(full, x)
    errors = []
    for k in (10, 40, 160):
        out = SAMPLERS[sampler](exact_flow_denoiser(full), x, full.respace(spaced_timesteps(1000, k, "quadratic")))
        errors.append(float((out - exact).pow(2).sum(1).mean().sqrt()))
    assert all(b < a for a, b in itertools.pairwise(errors)) and errors[-1] < 1e-2, errors


def test_samplers_do_not_see_the_scale() -> None:
    """The flow path and the variance-preserving path of the same ᾱ, each with its exact network, give the same
    samples from the same noise: the solvers run in the variance-preserving frame and only the network sees s_t."""
    flow = make_schedule("flow", T)
    vp = Schedule.from_alphas_cumprod(flow.alphas_cumprod)
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for name in ("ddim", "dpmpp_2m", "dpmpp_3m", "unipc"):
        keep = spaced_timesteps(T, 12, "quadratic")
        out_flow = SAMPLERS[name](exact_flow_denoiser(flow), x, flow.respace(keep))
        vp_net = Unconditional(Denoiser(ExactNetwork(GAUSS, vp, "v"), vp, "v"))  # type: ignore[arg-type]
        out_vp = SAMPLERS[name](vp_net, x, vp.respace(keep))
        torch.testing.assert_close(out_flow, out_vp, rtol=1e-8, atol=1e-9, msg=name)


def test_ddpm_on_the_flow_path_reproduces_the_gaussian() -> None:
    """Ancestral sampling in the scaled-down frame with an exact network draws from the data's distribution."""
    full = make_schedule("flow", 300)
    x = torch.randn(8000, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    out = SAMPLERS["ddpm"](exact_flow_denoiser(full), x, full, generator=torch.Generator().manual_seed(6))
    # Monte-Carlo error of the mean ~ √(0.25/8000) = 0.006, of the covariance ~ 0.004; T = 300 leaves ~0.005 bias
    torch.testing.assert_close(out.mean(0), GAUSS.mean, rtol=0, atol=0.02)
    torch.testing.assert_close(torch.cov(out.T), GAUSS.cov, rtol=0, atol=0.02)


def test_the_flow_target_round_trips_through_x0_and_eps() -> None:
    s = make_schedule("flow", T)
    g = torch.Generator().manual_seed(7)
    x0, eps = torch.randn(50, 2, generator=g, dtype=torch.float64), torch.randn(50, 2, generator=g, dtype=torch.float64)
    i = torch.randint(0, T, (50,), generator=g)
    i[0] = T - 1  # pure noise: α = 0, still invertible for the flow target
    xt = q_sample(s, x0, i, eps)
    y = target_from("flow", s, xt, i, x0, eps)
    torch.testing.assert_close(y, eps - x0, rtol=0, atol=1e-14)
    x0_hat, eps_hat = x0_eps_from("flow", s, xt, i, y)
    torch.testing.assert_close(x0_hat, x0, rtol=0, atol=1e-12)
    torch.testing.assert_close(eps_hat, eps, rtol=0, atol=1e-12)


def test_unipc_is_third_order_on_the_exact_ode() -> None:
    """UniPC-2's corrector raises DPM-Solver++(2M)'s order by one (Zhao et al. 2023, thm. 3.1): steps even in λ on a
    fine cosine schedule with an exact denoiser, the fitted order is above 2.5 and the error below 2M's."""
    from tests.unit.test_samplers import lambda_even_errors

    errors, order = lambda_even_errors(["dpmpp_2m", "unipc"], [20, 40, 80])
    assert order > 2.5 and errors["unipc"][-1] < errors["dpmpp_2m"][-1], (errors, order)


def test_flow_matching_is_a_v_loss_weighted_by_one_plus_sin_2phi() -> None:
    """docs/math.md: at the same SNR, ‖u - û‖² = (1 + sin 2φ)‖v - v̂‖² for any x̂0, and uniform τ is φ with density
    1/(1 + sin 2φ), so the flow loss at uniform τ is the v-loss at uniform φ."""
    g = torch.Generator().manual_seed(8)
    phi = torch.rand(1000, generator=g, dtype=torch.float64) * (torch.pi / 2)
    x0, eps = (
        torch.randn(1000, 3, generator=g, dtype=torch.float64),
        torch.randn(1000, 3, generator=g, dtype=torch.float64),
    )
    x0_hat = x0 + 0.3 * torch.randn(1000, 3, generator=g, dtype=torch.float64)
    c, s = phi.cos()[:, None], phi.sin()[:, None]
    x_vp = c * x0 + s * eps
    tau = s / (c + s)
    x_flow = (1 - tau) * x0 + tau * eps
    torch.testing.assert_close(x_flow, x_vp / (c + s), rtol=0, atol=1e-12)
    v_err = ((c * eps - s * x0) - (x_vp * c - x0_hat) / s).pow(2).sum(1)  # v̂ from x̂0 at x_φ: (α x - x̂0)/σ
    u_err = ((eps - x0) - (x_flow - x0_hat) / tau).pow(2).sum(1)  # û from x̂0 at x_τ: (x - x̂0)/τ
    torch.testing.assert_close(u_err, (1 + (2 * phi).sin()) * v_err, rtol=1e-9, atol=1e-9)
    grid = torch.linspace(0, torch.pi / 2, 200_001, dtype=torch.float64)
    density = 1 / (1 + (2 * grid).sin())
    tau_grid = grid.sin() / (grid.cos() + grid.sin())
    torch.testing.assert_close(
        torch.trapezoid(density, grid), torch.tensor(1.0, dtype=torch.float64), rtol=0, atol=1e-9
    )
    slope = torch.gradient(tau_grid, spacing=(grid,))[0][1:-1]  # central differences; the ends are one-sided
    torch.testing.assert_close(slope, density[1:-1], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("name", "target"), [("cosine", "v"), ("cosine", "eps"), ("flow", "flow"), ("sigmoid", "x0")])
def test_continuous_min_snr_weights_are_the_table_s_at_the_steps(name: str, target: str) -> None:
    """The continuous weighting at t_i = (i+1)/T equals `target_weight`'s table (same normalization)."""
    from difflab.objectives import DenoisingObjective, target_weight

    schedule = make_schedule(name, T)
    path = NoisePath(name, T)
    objective = DenoisingObjective("min_snr", path=path)
    denoiser = Denoiser(pseudo_velocity, schedule, target)  # type: ignore[arg-type]
    alpha, sigma = path.alpha_sigma(torch.arange(1, T + 1, dtype=torch.float64) / T)
    got = objective._weights(denoiser, alpha, sigma)
    torch.testing.assert_close(got[:-3], target_weight("min_snr", target, schedule)[:-3], rtol=1e-6, atol=0)


def test_continuous_time_feeds_the_network_the_path_at_uniform_times() -> None:
    """The objective draws u = 1 - U[0, 1), then ε; the network sees x = α(u) x0 + σ(u) ε at timestep uT - 1."""
    from difflab.objectives import DenoisingObjective

    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def network(x: torch.Tensor, t01: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        seen.append((x.detach().clone(), t01.detach().clone()))
        return torch.zeros_like(x, requires_grad=True)

    path = NoisePath("flow", T)
    denoiser = Denoiser(network, make_schedule("flow", T), "flow")  # type: ignore[arg-type]
    x0 = torch.randn(256, 2, generator=torch.Generator().manual_seed(9))
    loss = DenoisingObjective(path=path)(denoiser, x0, generator=torch.Generator().manual_seed(10))
    g = torch.Generator().manual_seed(10)
    u = 1.0 - torch.rand(256, generator=g)
    noise = torch.randn(x0.shape, generator=g)
    x, t01 = seen[0]
    torch.testing.assert_close(t01, ((u.double() * T - 1) / (T - 1)).float())
    torch.testing.assert_close(x, (1 - u[:, None]) * x0 + u[:, None] * noise, rtol=1e-6, atol=1e-6)
    assert float(loss.value) == pytest.approx(float((noise - x0).pow(2).mean()), rel=1e-5)  # zero output: ‖u‖²
    assert len(torch.unique(t01)) == 256  # times between the steps, not only on them


@pytest.mark.parametrize("steps", [2, 3, 7, 10, 25])
def test_unipc_matches_diffusers_step_by_step(steps: int) -> None:
    """diffusers' UniPCMultistepScheduler (order 2, B(h) = e^h - 1, data prediction, lower order at the end) from
    the same noise with the same pseudo-model: every state of the chain and the result agree to float32 rounding."""
    from diffusers import UniPCMultistepScheduler

    from difflab.samplers import sample_unipc
    from tests.unit.test_samplers import eps_denoiser, from_diffusers, matched_pair, pseudo_eps, x_T

    _, kw = matched_pair()
    ref = UniPCMultistepScheduler(
        **kw, solver_order=2, solver_type="bh2", predict_x0=True, lower_order_final=True, timestep_spacing="trailing"
    )
    full = from_diffusers(ref)
    ref.set_timesteps(steps)
    schedule = full.respace(ref.timesteps.flip(0).tolist())
    ours: list[torch.Tensor] = []
    out = sample_unipc(eps_denoiser(full), x_T(), schedule, callback=lambda d: ours.append(d["x"].clone()))
    x, theirs = x_T(), []
    for t in ref.timesteps:
        theirs.append(x)
        x = ref.step(pseudo_eps(x, t.expand(len(x))), t, x).prev_sample
    torch.testing.assert_close(torch.stack(ours), torch.stack(theirs), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out, x, rtol=1e-4, atol=1e-4)


def test_the_bound_does_not_see_the_scale() -> None:
    """`evaluate --nll` on the flow path equals the bound of the variance-preserving path with the same ᾱ, each with
    its exact network and the same noise: every KL term is taken in the variance-preserving frame."""
    from difflab.vlb import nll_bits_per_dim

    flow = make_schedule("flow", 50)
    vp = Schedule.from_alphas_cumprod(flow.alphas_cumprod)
    vp_net = Unconditional(Denoiser(ExactNetwork(GAUSS, vp, "v"), vp, "v"))  # type: ignore[arg-type]
    x0 = GAUSS.sample(300, torch.Generator().manual_seed(11))
    on_flow = nll_bits_per_dim(exact_flow_denoiser(flow), flow, x0, generator=torch.Generator().manual_seed(12))
    on_vp = nll_bits_per_dim(vp_net, vp, x0, generator=torch.Generator().manual_seed(12))
    assert on_flow.total == pytest.approx(on_vp.total, rel=1e-5) and np.isfinite(on_flow.total)
    assert on_flow.prior == pytest.approx(0.0, abs=1e-12)  # pure noise at t = 1: nothing left to pay for
