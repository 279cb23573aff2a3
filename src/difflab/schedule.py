"""Noise levels: a path (α_t, σ_t) over continuous time, and its discretization into the steps samplers walk.

A `NoisePath` is x_t = α(t) x_0 + σ(t) ε over t ∈ [0, 1]: the variance-preserving schedules (cosine, linear,
sigmoid, the series preset) and the linear interpolant of flow matching (α = 1 − t, σ = t; Lipman et al. 2023,
Liu et al. 2023). A `Schedule` is a path at T steps t_i = (i + 1)/T. Timesteps are 0-based: t = 0 is the least
noisy step, t = T-1 the noisiest; the data itself is "step -1" with ᾱ_{-1} = 1.

Every Gaussian path is a variance-preserving one seen at a scale: x_t = s_t (√ᾱ_t x_0 + √(1-ᾱ_t) ε) with
s_t = √(α_t² + σ_t²) and ᾱ_t = α_t²/s_t² (Kingma et al. 2021, sec. 3; Karras et al. 2022, eq. 4). A `Schedule`
stores that ᾱ_t (float64) and s_t; β_t, the SNR and the posterior q(x_{t-1} | x_t, x_0) follow from ᾱ in the
scaled-down frame, and samplers walk that frame, so they never ask which family a path belongs to. A respaced
schedule (a subset of the trained steps) is just another `Schedule` built from the kept steps (Nichol & Dhariwal
2021, sec. 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from difflab.types import FixedScheduleName, Spacing, choices

#: The schedules `make_schedule` builds from their definition alone ("learned" comes from trained weights).
SCHEDULE_NAMES: tuple[str, ...] = choices(FixedScheduleName)

#: ᾱ_{T-1} above this leaves visible signal at the start of sampling from N(0, I).
TERMINAL_ALPHA_BAR_WARN = 1e-2


@dataclass(frozen=True)
class Schedule:
    """A discrete diffusion process defined by ᾱ at each of its steps.

    `timesteps[i]` is the trained model timestep that step i stands for: `arange(T)` for a full
    schedule, an increasing subset for a respaced one. Samplers walk i = len-1 .. 0 and pass
    `timesteps[i]` to the denoiser; the previous step is always i-1 of this array.
    """

    alphas_cumprod: torch.Tensor  # (K,) float64, strictly decreasing in (0, 1]; the last may be 0 (pure noise)
    timesteps: torch.Tensor  # (K,) int64, strictly increasing model timesteps
    scales: torch.Tensor | None = None  # (K,) float64 s_t > 0; None: all 1 (a variance-preserving path)

    def __post_init__(self) -> None:
        ab = self.alphas_cumprod
        if ab.dtype != torch.float64 or ab.ndim != 1 or len(ab) < 1:
            raise ValueError("alphas_cumprod must be a non-empty 1-D float64 tensor")
        inside = (ab > 0) & (ab <= 1)
        inside[-1] |= bool(ab[-1] == 0)  # pure noise, at the noisiest step only
        if not bool(inside.all()):
            raise ValueError("alphas_cumprod must lie in (0, 1] (only the noisiest step may reach 0)")
        if len(ab) > 1 and not bool((ab[1:] < ab[:-1]).all()):
            raise ValueError("alphas_cumprod must be strictly decreasing")
        if self.timesteps.shape != ab.shape:
            raise ValueError("timesteps and alphas_cumprod must have the same length")
        if self.scales is not None and (self.scales.shape != ab.shape or not bool((self.scales > 0).all())):
            raise ValueError("scales must be positive, one per step")

    @classmethod
    def from_alphas_cumprod(cls, alphas_cumprod: torch.Tensor) -> Schedule:
        """A full variance-preserving schedule whose step i is model timestep i."""
        ab = torch.as_tensor(alphas_cumprod, dtype=torch.float64)
        return cls(ab, torch.arange(len(ab), dtype=torch.int64))

    @classmethod
    def from_alpha_sigma(cls, alpha: torch.Tensor, sigma: torch.Tensor) -> Schedule:
        """A full schedule of any Gaussian path x_t = α_t x_0 + σ_t ε: ᾱ = α²/(α² + σ²), s = √(α² + σ²)."""
        alpha, sigma = torch.as_tensor(alpha, dtype=torch.float64), torch.as_tensor(sigma, dtype=torch.float64)
        norm = alpha**2 + sigma**2
        return cls(alpha**2 / norm, torch.arange(len(alpha), dtype=torch.int64), norm.sqrt())

    def __len__(self) -> int:
        return len(self.alphas_cumprod)

    # --- quantities at each step (all float64, shape (K,)) ---
    @property
    def scale(self) -> torch.Tensor:
        """s_t: the path's x_t is s_t times the variance-preserving x_t of the same ᾱ_t."""
        return torch.ones_like(self.alphas_cumprod) if self.scales is None else self.scales

    @property
    def alpha(self) -> torch.Tensor:
        """α_t, the weight of x_0 in x_t = α_t x_0 + σ_t ε."""
        root = self.alphas_cumprod.sqrt()
        return root if self.scales is None else self.scales * root

    @property
    def sigma(self) -> torch.Tensor:
        """σ_t, the weight of ε in x_t = α_t x_0 + σ_t ε."""
        root = (1.0 - self.alphas_cumprod).sqrt()
        return root if self.scales is None else self.scales * root

    @property
    def alphas_cumprod_prev(self) -> torch.Tensor:
        """ᾱ_{t-1}, with ᾱ_{-1} = 1 (the data)."""
        one = torch.ones(1, dtype=torch.float64)
        return torch.cat([one, self.alphas_cumprod[:-1]])

    @property
    def alphas(self) -> torch.Tensor:
        """α_t = ᾱ_t / ᾱ_{t-1} (Ho et al. 2020, sec. 2)."""
        return self.alphas_cumprod / self.alphas_cumprod_prev

    @property
    def betas(self) -> torch.Tensor:
        """β_t = 1 - α_t."""
        return 1.0 - self.alphas

    @property
    def snr(self) -> torch.Tensor:
        """SNR_t = ᾱ_t / (1 - ᾱ_t) (Kingma et al. 2021, eq. 2)."""
        ab = self.alphas_cumprod
        return ab / (1.0 - ab)

    @property
    def log_snr(self) -> torch.Tensor:
        """log SNR_t, computed stably."""
        ab = self.alphas_cumprod
        return torch.log(ab) - torch.log1p(-ab)

    @property
    def posterior_variance(self) -> torch.Tensor:
        """β̃_t = β_t (1 - ᾱ_{t-1}) / (1 - ᾱ_t) (Ho et al. 2020, eq. 7); 0 at t = 0."""
        return self.betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)

    @property
    def posterior_log_variance_clipped(self) -> torch.Tensor:
        """log β̃_t with the t = 0 entry (where β̃ = 0) replaced by log β̃_1, as in improved-DDPM."""
        var = self.posterior_variance
        if len(var) == 1:
            return torch.log(self.betas)
        return torch.log(torch.cat([var[1:2], var[1:]]))

    @property
    def posterior_mean_coef_x0(self) -> torch.Tensor:
        """Coefficient of x_0 in μ̃_t: √ᾱ_{t-1} β_t / (1 - ᾱ_t) (Ho et al. 2020, eq. 7)."""
        return self.alphas_cumprod_prev.sqrt() * self.betas / (1.0 - self.alphas_cumprod)

    @property
    def posterior_mean_coef_xt(self) -> torch.Tensor:
        """Coefficient of x_t in μ̃_t: √α_t (1 - ᾱ_{t-1}) / (1 - ᾱ_t) (Ho et al. 2020, eq. 7)."""
        return self.alphas.sqrt() * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)

    @property
    def terminal_alpha_bar(self) -> float:
        """ᾱ at the noisiest step: how much signal is left where sampling starts from N(0, I)."""
        return float(self.alphas_cumprod[-1])

    @property
    def num_train_timesteps(self) -> int:
        """Number of model timesteps the schedule was built over (≥ len for a respaced one)."""
        return int(self.timesteps[-1]) + 1

    def respace(self, keep: torch.Tensor | list[int]) -> Schedule:
        """A new process over the kept model timesteps (improved-diffusion's respacing).

        β'_i = 1 - ᾱ_{k_i} / ᾱ_{k_{i-1}} follows from `alphas_cumprod` of the kept steps, so every
        derived quantity (posterior, variances) is that of a valid shorter diffusion. The kept steps
        must include the last one, where sampling starts.
        """
        idx = torch.as_tensor(keep, dtype=torch.int64).flatten()
        if idx.numel() == 0:
            raise ValueError("respacing needs at least one timestep")
        if bool((idx[1:] <= idx[:-1]).any()):
            raise ValueError("respaced timesteps must be strictly increasing")
        positions = torch.searchsorted(self.timesteps, idx)
        positions = positions.clamp(max=len(self) - 1)
        if not bool((self.timesteps[positions] == idx).all()):
            raise ValueError(f"respaced timesteps must be a subset of {self.timesteps.tolist()[:5]}...")
        if int(idx[-1]) != int(self.timesteps[-1]):
            raise ValueError(
                f"respaced timesteps must end at the last trained step {int(self.timesteps[-1])} "
                f"(sampling starts from N(0, I) there), got {int(idx[-1])}"
            )
        scales = None if self.scales is None else self.scales[positions]
        return Schedule(self.alphas_cumprod[positions], self.timesteps[positions], scales)


# --- constructors named after their definition ---


def linear_alphas_cumprod(num_steps: int, beta_start: float, beta_end: float) -> torch.Tensor:
    """ᾱ_t = Π_{s≤t} (1 - β_s) with β linear from beta_start to beta_end (Ho et al. 2020, sec. 4)."""
    betas = torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, dim=0)


def cosine_alphas_cumprod(num_steps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """ᾱ_t = f(t+1)/f(0), f(u) = cos²((u/T + s)/(1 + s)·π/2), β clipped at max_beta.

    Nichol & Dhariwal 2021, eq. 17. The step index is shifted by one because our t = 0 is their
    t = 1; clipping β (their sec. 3.2) is applied on the step ratios and then re-accumulated.
    """
    u = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps
    f = torch.cos((u + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1.0 - f[1:] / f[:-1]).clamp(max=max_beta)
    return torch.cumprod(1.0 - betas, dim=0)


def sigmoid_alphas_cumprod(
    num_steps: int, start: float = -3.0, end: float = 3.0, tau: float = 1.0, max_beta: float = 0.999
) -> torch.Tensor:
    """ᾱ from a scaled sigmoid of time (Jabri et al. 2022, "Scalable adaptive computation", alg. 1)."""
    u = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps
    v_start = torch.sigmoid(torch.tensor(start / tau, dtype=torch.float64))
    v_end = torch.sigmoid(torch.tensor(end / tau, dtype=torch.float64))
    f = (-torch.sigmoid((u * (end - start) + start) / tau) + v_end) / (v_end - v_start)
    betas = (1.0 - f[1:] / f[:-1]).clamp(max=max_beta)
    return torch.cumprod(1.0 - betas, dim=0)


def flow_schedule(num_steps: int) -> Schedule:
    """The linear interpolant x_t = (1 - t) x_0 + t ε at t_i = (i + 1)/T (Lipman et al. 2023, eq. 23 with σ_min = 0).

    Its noisiest step is pure noise (α = 0), the grid diffusers' FlowMatchEulerDiscreteScheduler trains on.
    """
    t = torch.arange(1, num_steps + 1, dtype=torch.float64) / num_steps
    return Schedule.from_alpha_sigma(1.0 - t, t)


def make_schedule(name: str, num_steps: int) -> Schedule:
    """Build a named schedule with T = num_steps.

    - ``cosine``: Nichol & Dhariwal's cosine, s = 0.008 (the default; reaches ᾱ_{T-1} ≈ 0).
    - ``linear``: Ho et al.'s 1e-4..0.02 rescaled to T steps (β·1000/T), so ᾱ_{T-1} ≈ 0 for any T.
    - ``sigmoid``: Jabri et al.'s sigmoid schedule (start -3, end 3, τ = 1).
    - ``series``: the tutorial series' exact setting, linear 1e-4..0.02 *without* rescaling. At
      T = 200 it ends at ᾱ ≈ 0.13, so sampling from N(0, I) starts from the wrong place; kept only
      to reproduce the series.
    - ``flow``: the linear interpolant of flow matching, α = 1 - t, σ = t (`flow_schedule`).
    """
    if name == "learned":
        raise ValueError("the learned schedule comes from trained weights: use LearnedScheduleModel.schedule(T)")
    if name not in SCHEDULE_NAMES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULE_NAMES)}")
    if num_steps < 2:
        raise ValueError("a schedule needs at least 2 timesteps")
    if name == "flow":
        return flow_schedule(num_steps)
    if name == "cosine":
        ab = cosine_alphas_cumprod(num_steps)
    elif name == "linear":
        ab = linear_alphas_cumprod(num_steps, *_linear_betas(num_steps))
    elif name == "sigmoid":
        ab = sigmoid_alphas_cumprod(num_steps)
    else:
        ab = linear_alphas_cumprod(num_steps, 1e-4, 0.02)
    return Schedule.from_alphas_cumprod(ab)


def _linear_betas(num_steps: int) -> tuple[float, float]:
    """Ho et al.'s β range 1e-4..0.02 for T = 1000, rescaled to `num_steps` so the path does not depend on T."""
    scale = 1000.0 / num_steps
    return 1e-4 * scale, min(0.02 * scale, 0.999)


@dataclass(frozen=True)
class NoisePath:
    """A named schedule in continuous time: x_t = α(t) x_0 + σ(t) ε for t ∈ [0, 1], t = 1 the noisiest.

    `schedule()` is its discretization at t_i = (i + 1)/T, the tables `make_schedule` has always built (β
    clipping included); `alpha_sigma(t)` is the closed form those tables sample. The variance-preserving paths:
    cosine ᾱ(t) = f(t)/f(0) (Nichol & Dhariwal 2021, eq. 17); linear, the limit of Π(1 - β_k) with β linear,
    ᾱ(t) = exp(-T(β₀t + ½(β₁ - β₀)t²)), which is Song et al. 2021's VP SDE (eq. 33, β_min = 0.1, β_max = 20) for
    the rescaled range; sigmoid (Jabri et al. 2022, alg. 1). The flow path is α = 1 - t, σ = t. EDM's σ grid
    (Karras et al. 2022, eq. 5) is a way to walk any of them: the ``karras`` spacing.
    """

    name: str
    num_steps: int  # T of the discretization; the series preset's β, fixed per step, make its path depend on it

    def schedule(self) -> Schedule:
        return make_schedule(self.name, self.num_steps)

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(α(t), σ(t)) in float64 at times t ∈ [0, 1]."""
        t = torch.as_tensor(t, dtype=torch.float64).clamp(0.0, 1.0)
        if self.name == "flow":
            return 1.0 - t, t
        ab = self._alphas_cumprod(t)
        return ab.sqrt(), (1.0 - ab).sqrt()

    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        """λ(t) = 2 log(α/σ), decreasing in t."""
        alpha, sigma = self.alpha_sigma(t)
        return 2.0 * (alpha.log() - sigma.log())

    def _alphas_cumprod(self, t: torch.Tensor) -> torch.Tensor:
        if self.name == "cosine":
            s = 0.008
            f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
            return f / math.cos(s / (1 + s) * math.pi / 2) ** 2
        if self.name in ("linear", "series"):
            b0, b1 = _linear_betas(self.num_steps) if self.name == "linear" else (1e-4, 0.02)
            return torch.exp(-self.num_steps * (b0 * t + 0.5 * (b1 - b0) * t**2))
        if self.name == "sigmoid":
            start, end = -3.0, 3.0
            v_start, v_end = (torch.sigmoid(torch.tensor(v, dtype=torch.float64)) for v in (start, end))
            return (v_end - torch.sigmoid(t * (end - start) + start)) / (v_end - v_start)
        raise ValueError(f"no closed form for schedule {self.name!r}; choose one of {', '.join(SCHEDULE_NAMES)}")


def spaced_timesteps(num_train_steps: int, num_steps: int, spacing: Spacing = "trailing") -> torch.Tensor:
    """Pick `num_steps` of `num_train_steps` timesteps, always including the last one (T-1).

    ``trailing`` counts back from T-1 in equal strides (Lin et al. 2024, table 2); ``linspace``
    rounds an even grid from 0 to T-1 (one step is [T-1], not [0]); ``quadratic`` rounds
    (T-1)·(i/(K-1))², i = 0..K-1 (Song et al. 2021, DDIM, appendix D.2), which spends more of the
    steps at low noise, where fine structure is resolved; where rounding would repeat a timestep
    near 0 the steps are pushed apart to consecutive ones. All start the chain at the noisiest
    trained step, which the "leading" spacing (0, T/K, 2T/K, ...) does not, so it is not offered.
    """
    if not 1 <= num_steps <= num_train_steps:
        raise ValueError(f"steps must be between 1 and {num_train_steps}, got {num_steps}")
    if spacing in NOISE_SPACINGS:
        raise ValueError(f"spacing {spacing!r} follows the noise levels: use noise_spaced_timesteps(schedule, ...)")
    if spacing not in choices(Spacing):
        raise ValueError(f"unknown spacing {spacing!r}; choose trailing, linspace or quadratic")
    last = num_train_steps - 1
    if num_steps == 1:
        return torch.tensor([last], dtype=torch.int64)  # one step must still be the noisiest
    if spacing == "trailing":
        # round(T - i·T/K) - 1 exactly as Lin et al.'s table 2 writes it: rounding T-1 - i·T/K instead differs at
        # the half-way points (T = 100, K = 40 gives 96 where they have 97) and would break diffusers parity.
        stride = num_train_steps / num_steps
        ts = (torch.round(num_train_steps - torch.arange(num_steps, dtype=torch.float64) * stride) - 1).flip(0)
    elif spacing == "linspace":
        ts = torch.linspace(0, last, num_steps).round()
    else:
        ts = _strictly_increasing(torch.round(last * torch.linspace(0, 1, num_steps, dtype=torch.float64) ** 2), last)
    ts = ts.to(torch.int64)
    if bool((ts[1:] <= ts[:-1]).any()):
        raise AssertionError("spacing produced repeated timesteps")  # cannot happen for steps ≤ T
    return ts


#: Spacings defined by the noise levels of a schedule rather than by timestep indices.
NOISE_SPACINGS = ("logsnr", "karras")
#: Karras et al. 2022's ρ (eq. 5): larger ρ puts more steps at low noise; and their largest σ.
KARRAS_RHO = 7.0
SIGMA_MAX = 80.0


def noise_spaced_timesteps(schedule: Schedule, num_steps: int, spacing: str) -> torch.Tensor:
    """`num_steps` timesteps of `schedule` ending at its last, chosen by noise level rather than by index.

    ``logsnr``: evenly spaced in log SNR (the variable DPM-Solver integrates in, Lu et al. 2022a, sec. 3.3);
    ``karras``: evenly spaced in σ^{1/ρ}, ρ = 7, with σ = √((1-ᾱ)/ᾱ) (Karras et al. 2022, eq. 5). Both span σ
    up to at most `SIGMA_MAX` (EDM's 80): cosine's last steps climb to σ ≈ 2·10⁴, where evenly spaced levels
    would spend most steps on pure noise; the chain still starts at the last timestep. Each level is rounded to
    the nearest trained timestep in log σ; repeats are pushed apart to consecutive timesteps.
    """
    if spacing not in NOISE_SPACINGS:
        raise ValueError(f"unknown noise spacing {spacing!r}; choose one of {', '.join(NOISE_SPACINGS)}")
    total = len(schedule)
    if not 1 <= num_steps <= total:
        raise ValueError(f"steps must be between 1 and {total}, got {num_steps}")
    last = total - 1
    if num_steps == 1:
        return torch.tensor([last], dtype=torch.int64)
    log_sigma = -0.5 * schedule.log_snr  # increasing with the timestep
    top = min(float(log_sigma[-1]), math.log(SIGMA_MAX))
    u = torch.linspace(0, 1, num_steps, dtype=torch.float64)
    if spacing == "logsnr":
        targets = log_sigma[0] + u * (top - log_sigma[0])
    else:
        lo, hi = math.exp(float(log_sigma[0]) / KARRAS_RHO), math.exp(top / KARRAS_RHO)
        targets = (lo + u * (hi - lo)).pow(KARRAS_RHO).log()
    nearest = (log_sigma[None, :] - targets[:, None]).abs().argmin(dim=1)
    # strictly increasing from ≥ 0 to `last` by construction (tests/unit/test_noise_spacing.py checks every count)
    return _strictly_increasing(nearest.sort().values, last).to(torch.int64)


def _strictly_increasing(ts: torch.Tensor, last: int) -> torch.Tensor:
    """Make a sorted grid from 0 to `last` strictly increasing: push repeats up, then pull the top back under `last`."""
    out = ts.tolist()
    for i in range(1, len(out)):
        out[i] = max(out[i], out[i - 1] + 1)
    out[-1] = last
    for i in range(len(out) - 2, -1, -1):
        out[i] = min(out[i], out[i + 1] - 1)
    return torch.tensor(out)
