"""Training time from nothing to ≥ 95% conditional accuracy on mnist5k, and where a step's time goes.

    python benchmarks/images_time_to_quality.py [--variants default "uniform weighting"] [--steps 1000] [--seed 0]

Each variant trains benchmarks/mnist5k.py's configuration (the image defaults: small U-Net, ε target with
min-SNR weighting, cosine T = 1000, guidance dropout 0.15) and, every `--every` steps, scores the EMA weights
as `difflab evaluate` does, but cheaper: `--per-class` samples of each digit with DPM-Solver++(2M) 20 steps at
guidance 2 (the image default), judged by one CNN trained once on the same 4,500 training digits. The training
seconds (evaluation excluded) at the first evaluation with accuracy ≥ 95% is the time to quality.
`--stop-at-target` ends a variant there.

Before training it counts the FLOPs of one training step (torch's FlopCounterMode) and times steps, so the
table says how close the step runs to what the CPU can do.
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from common import pin_threads, trainer_for
from difflab.images.classifier import train_classifier
from difflab.images.metrics import image_quality
from difflab.images.pixels import to_uint8
from difflab.trainer import Trainer
from mnist5k import CONFIG

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "uniform weighting": {"weighting": "simple"},  # the image default until min-SNR was measured
    "uniform, batch 32": {"weighting": "simple", "batch_size": 32},
    "uniform, lr 4e-3": {"weighting": "simple", "lr": 4e-3},
}
TARGET = 0.95


class Reached(Exception):
    """Raised from the evaluation hook once a variant reached the target (with --stop-at-target)."""


def step_flops(trainer: Trainer) -> float:
    """FLOPs of one training step (forward and backward of one batch)."""
    with FlopCounterMode(display=False) as counter:
        x0, cond = trainer.batch()
        trainer.objective(trainer.train_denoiser, x0, cond, generator=trainer.generator).value.backward()
    trainer.optimizer.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def variant_row(name: str, args: argparse.Namespace, judge: tuple[Any, Any, Any] | None) -> tuple[str, Any]:
    """Train one variant with evaluations along the way; its table row, and the judge (made on first use)."""
    options = {
        **CONFIG,
        **VARIANTS[name],
        "steps": args.steps,
        "seed": args.seed,
        "threads": args.threads,
        "sample_every": args.every,
    }
    trainer, as_run = trainer_for("mnist5k", options)
    flops = step_flops(trainer)
    if judge is None:
        first = as_run(trainer.ema_denoiser(), 0)
        train, test = first.kind.image_sets(first)
        judge = (train_classifier(train, test, seed=0), train, test)
        print(f"judging classifier: {judge[0].test_accuracy:.1%} held-out accuracy", flush=True)
    classifier, train, test = judge
    labels = torch.arange(10).repeat_interleave(args.per_class)
    curve: list[tuple[int, float, float, float]] = []

    def score(step: int, ema: Any) -> None:
        run = as_run(ema, step)
        samples = to_uint8(
            run.draw(len(labels), run.resolve(sampler="dpmpp_2m", steps=20), labels=labels, seed=1, progress=False)
        )
        q = image_quality(classifier, samples, labels.numpy(), train, test, seed=1)
        curve.append((step, trainer.elapsed, q.conditional_accuracy, q.frechet / max(q.floor, 1e-12)))
        print(
            f"  {name}: step {step}, {trainer.elapsed:.0f} s, accuracy {q.conditional_accuracy:.1%}, "
            f"Fréchet ratio {curve[-1][3]:.2f}",
            flush=True,
        )
        if args.stop_at_target and q.conditional_accuracy >= TARGET:
            raise Reached

    with contextlib.suppress(Reached):
        trainer.fit(progress=False, on_sample=score)
    rate = trainer.elapsed / max(trainer.step, 1)
    first = next((pt for pt in curve if pt[2] >= TARGET), None)
    reached = "never" if first is None else f"{first[1] / 60:.1f} min ({first[0]} steps)"
    row = (
        f"| {name} | {flops / 1e9:.1f} | {rate:.2f} | {flops / rate / 1e9:.0f} | {reached} | "
        f"{curve[-1][2]:.1%} at step {curve[-1][0]} | {curve[-1][3]:.2f} |"
    )
    return row, judge


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="+", default=["default"], choices=list(VARIANTS))
    p.add_argument("--steps", type=int, default=CONFIG["steps"])
    p.add_argument("--every", type=int, default=125)
    p.add_argument("--per-class", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0, help="training seed (initialization, data order, dropout)")
    p.add_argument("--stop-at-target", action="store_true")
    args = p.parse_args()
    print(f"{pin_threads(args.threads)}; {args.per_class} samples per digit, DPM-Solver++ 20 steps, guidance 2")
    judge = None
    rows = []
    for name in args.variants:
        row, judge = variant_row(name, args, judge)
        rows.append(row)
    print(
        "\n| variant | GFLOP a step | s a step | GFLOP/s | time to ≥ 95% accuracy | accuracy at the end | "
        "Fréchet ratio at the end |\n|---|---|---|---|---|---|---|"
    )
    print("\n".join(rows))


if __name__ == "__main__":
    main()
