"""A short training run on moons must beat an untrained model by a wide, fixed-seed margin."""

from __future__ import annotations

from pathlib import Path

import torch

from difflab.config import make_config
from difflab.data.toy import builtin
from difflab.generate import generate
from difflab.metrics import quality
from difflab.run import load_run
from difflab.samplers import sample_ddpm
from difflab.train import Trainer, lr_at, point_training_set


def _ratio(run_dir: Path, *, ema: bool = True) -> float:
    run = load_run(run_dir, ema=ema)
    x = generate(lambda s: run.bound(), sample_ddpm, run.schedule, 1500, run.info.shape, seed=1)
    truth, truth2 = (torch.as_tensor(builtin("moons", 1500, s).x) for s in (101, 102))
    return quality(torch.as_tensor(run.to_data_units(x)), truth, truth2).ratio


def test_short_training_beats_untrained(tmp_path: Path) -> None:
    cfg = make_config(
        {
            "steps": 1500,
            "hidden": 64,
            "depth": 2,
            "n_data": 4000,
            "batch_size": 256,
            "timesteps": 100,
            "checkpoint_every": 10_000,
        }
    )
    data = point_training_set(builtin("moons", cfg.n_data, 0), cfg)
    untrained = Trainer(make_config({"steps": 1}, base=cfg), data, tmp_path / "untrained")
    untrained.save()
    trained = Trainer(cfg, data, tmp_path / "trained")
    trained.fit(progress=False)
    before, after = _ratio(tmp_path / "untrained", ema=False), _ratio(tmp_path / "trained")
    # Measured: untrained ≈ 500, 1500 steps ≈ 10-20. The bound leaves room for platform noise.
    assert after < 40, after
    assert after < before / 10, (before, after)


def test_lr_schedule_warms_up_then_decays() -> None:
    cfg = make_config({"steps": 1000, "lr": 1e-3, "lr_warmup": 100})
    assert lr_at(0, cfg) == 1e-5
    assert lr_at(99, cfg) == 1e-3
    assert lr_at(999, cfg) < 1.5e-4
    assert all(lr_at(s, cfg) >= lr_at(s + 1, cfg) for s in range(100, 999))
