"""A short training run on moons must beat an untrained model by a wide, fixed-seed margin."""

from __future__ import annotations

import difflab
from difflab.config import make_config
from difflab.training_step import lr_at

SMALL = {"hidden": 64, "depth": 2, "n_data": 4000, "batch_size": 256, "timesteps": 100, "checkpoint_every": 10_000}


def test_short_training_beats_untrained() -> None:
    untrained = difflab.train("moons", steps=1, progress=False, **SMALL)
    trained = difflab.train("moons", steps=1500, progress=False, **SMALL)
    before, after = (
        run.evaluate(n=1500, draws=1, seed=1, progress=False)["ratio"].mean for run in (untrained, trained)
    )
    # Measured: untrained ≈ 500, 1500 steps ≈ 10-20. The bound leaves room for platform noise.
    assert after < 40, after
    assert after < before / 10, (before, after)


def test_lr_schedule_warms_up_then_decays() -> None:
    cfg = make_config({"steps": 1000, "lr": 1e-3, "lr_warmup": 100})
    assert lr_at(0, cfg) == 1e-5
    assert lr_at(99, cfg) == 1e-3
    assert lr_at(999, cfg) < 1.5e-4
    assert all(lr_at(s, cfg) >= lr_at(s + 1, cfg) for s in range(100, 999))
