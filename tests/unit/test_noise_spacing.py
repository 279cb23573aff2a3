"""Timesteps chosen by noise level: even in log SNR, or in σ^{1/ρ} (Karras et al. 2022), written out here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from difflab.schedule import make_schedule, noise_spaced_timesteps, spaced_timesteps

#: Karras et al. 2022: ρ = 7 (eq. 5) and σ_max = 80 (table 1), written here, not read from the module under test.
RHO, SIGMA_MAX = 7.0, 80.0


@pytest.mark.parametrize("spacing", ["logsnr", "karras"])
@pytest.mark.parametrize("steps", [1, 2, 5, 10, 20, 100, 1000])
def test_every_count_starts_at_the_last_step_and_never_repeats(spacing: str, steps: int) -> None:
    ts = noise_spaced_timesteps(make_schedule("cosine", 1000), steps, spacing)
    assert len(ts) == steps and int(ts[-1]) == 999 and int(ts[0]) >= 0
    assert bool((ts[1:] > ts[:-1]).all())


@pytest.mark.parametrize("name", ["cosine", "linear", "sigmoid"])
def test_levels_follow_their_definition(name: str) -> None:
    schedule = make_schedule(name, 1000)
    ab = schedule.alphas_cumprod.numpy()
    log_sigma = 0.5 * np.log((1 - ab) / ab)
    top = min(log_sigma[-1], math.log(SIGMA_MAX))
    k = 12
    expected = {
        "logsnr": np.linspace(log_sigma[0], top, k),
        "karras": RHO * np.log(np.linspace(math.exp(log_sigma[0] / RHO), math.exp(top / RHO), k)),
    }
    for spacing, levels in expected.items():
        ts = noise_spaced_timesteps(schedule, k, spacing).numpy()
        nearest = np.abs(log_sigma[None, :] - levels[:, None]).argmin(1)
        # where rounding did not collide, each step is the trained timestep nearest its level
        free = np.diff(nearest, prepend=-1) > 1
        assert (ts[:-1][free[:-1]] == nearest[:-1][free[:-1]]).all(), (spacing, ts, nearest)
        assert ts[-1] == 999


def test_the_cap_keeps_steps_off_pure_noise_and_the_index_spacings_refuse_them() -> None:
    cosine = make_schedule("cosine", 1000)  # σ reaches 2·10⁴ at the last step
    ts = noise_spaced_timesteps(cosine, 10, "logsnr")
    ab = float(cosine.alphas_cumprod[int(ts[-2])])
    assert ((1 - ab) / ab) ** 0.5 <= SIGMA_MAX * 1.1
    with pytest.raises(ValueError, match="follows the noise levels"):
        spaced_timesteps(1000, 10, "logsnr")  # type: ignore[arg-type]


@pytest.mark.parametrize("spacing", ["logsnr", "karras"])
@pytest.mark.parametrize("steps", [0, -1, 1001])
def test_a_count_outside_one_to_t_is_refused(spacing: str, steps: int) -> None:
    with pytest.raises(ValueError, match="steps must be between 1 and 1000"):
        noise_spaced_timesteps(make_schedule("cosine", 1000), steps, spacing)
