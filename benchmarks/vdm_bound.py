"""The continuous-time VDM bound (Kingma et al. 2021, eq. 17) of learned-schedule runs on fresh data, in bits/dim.

    python benchmarks/vdm_bound.py RUN [RUN ...]

Prints each run's discretized ᾱ at both ends and, for a learned schedule, the EMA model's continuous VLB
(mean ± std of 10 Monte Carlo draws of t and ε over 5000 fresh points, normalized units), the bound it trained on.
"""

from __future__ import annotations

import math
import sys

import torch

import difflab
from common import pin_threads
from difflab.data.source import load_points
from difflab.evaluation import Stat
from difflab.learned_schedule import LearnedScheduleModel, vdm_terms


def main(runs: list[str]) -> None:
    print(pin_threads(1))
    for path in runs:
        run = difflab.load(path)
        s = run.model.schedule
        ends = f"ᾱ_0 {float(s.alphas_cumprod[0]):.6f}  ᾱ_T-1 {float(s.alphas_cumprod[-1]):.4g}"
        model = run.model.denoiser.model
        if not isinstance(model, LearnedScheduleModel):
            print(f"{path}: {ends}")
            continue
        data = load_points(run.config.data, 5000, run.config.seed + 1_000_003).x
        x = torch.as_tensor(run.info.scaler.transform(data), dtype=torch.float32)
        scale = 1.0 / (x.shape[1] * math.log(2))
        parts: dict[str, list[float]] = {"total": [], "diffusion": [], "prior": [], "reconstruction": []}
        for i in range(10):
            terms = vdm_terms(model.net, model.gamma, run.config.target, x, generator=torch.Generator().manual_seed(i))
            for key in parts:
                parts[key].append(scale * float(getattr(terms, key).detach().mean()))
        shown = ", ".join(f"{k} {Stat(v).format(4)}" for k, v in parts.items() if k != "total")
        print(f"{path}: {ends}; continuous VDM bound {Stat(parts['total']).format(4)} bits/dim ({shown})")


if __name__ == "__main__":
    main(sys.argv[1:])
