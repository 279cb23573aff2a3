"""The continuous-time VDM bound (Kingma et al. 2021, eq. 17) of learned-schedule runs on fresh data, in bits/dim.

    PYTHONPATH=src python benchmarks/vdm_bound.py RUN [RUN ...]

Prints each run's discretized ᾱ at both ends and, for a learned schedule, the EMA model's continuous VLB
(mean of 10 Monte Carlo draws of t and ε over 5000 fresh points, normalized units), the bound it trained on.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch

from difflab.data.source import load_points
from difflab.learned_schedule import LearnedScheduleModel, vdm_terms
from difflab.run import load_run


def main(runs: list[str]) -> None:
    for path in runs:
        run = load_run(Path(path))
        s = run.schedule
        ends = f"ᾱ_0 {float(s.alphas_cumprod[0]):.6f}  ᾱ_T-1 {float(s.alphas_cumprod[-1]):.4g}"
        model = run.denoiser.model
        if not isinstance(model, LearnedScheduleModel):
            print(f"{path}: {ends}")
            continue
        data = load_points(run.cfg.data, 5000, run.cfg.seed + 1_000_003).x
        x = torch.as_tensor(run.info.scaler.transform(data), dtype=torch.float32)
        draws = [
            vdm_terms(model.net, model.gamma, run.cfg.target, x, generator=torch.Generator().manual_seed(i))
            for i in range(10)
        ]
        scale = 1.0 / (10 * x.shape[1] * math.log(2))
        names = ("diffusion", "prior", "reconstruction")
        parts = {k: scale * sum(float(getattr(d, k).detach().mean()) for d in draws) for k in names}
        total = sum(parts.values())
        shown = ", ".join(f"{k} {v:.4f}" for k, v in parts.items())
        print(f"{path}: {ends}; continuous VDM bound {total:.4f} bits/dim ({shown})")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1:])
