"""What `sample`, `evaluate`, `plot`, `animate` and `write` do for an image run (the CLI dispatches here).

Image runs default to DDIM with 50 steps (a full 1000-step DDPM chain is minutes per grid on CPU);
`--sampler` and `--steps` override that.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from difflab import image_plots
from difflab.checkpoint import atomic_write_bytes
from difflab.classifier import train_classifier
from difflab.data.image_source import load_image_set
from difflab.errors import UserError
from difflab.image_metrics import image_quality
from difflab.image_run import DEFAULT_IMAGE_CLIP, sample_images, to_uint8
from difflab.run import LoadedRun

DEFAULT_SAMPLER = "ddim"
DEFAULT_STEPS = 50


def is_image_run(run: LoadedRun) -> bool:
    """Items of shape (C, H, W)."""
    return len(run.info.shape) == 3


def sampling_options(run: LoadedRun, args: argparse.Namespace) -> dict[str, Any]:
    """Sampler, steps, guidance and seed from the command line, with the image defaults."""
    sampler = args.sampler or DEFAULT_SAMPLER
    steps = args.steps or min(DEFAULT_STEPS, len(run.schedule))
    options: dict[str, Any] = {"sampler": sampler, "steps": steps, "guidance": args.guidance, "seed": args.seed}
    options["clip"] = args.clip or DEFAULT_IMAGE_CLIP
    options["spacing"] = args.spacing
    if sampler == "ddim":
        options["eta"] = args.eta
    elif sampler == "ddpm":
        options["variance"] = args.variance or run.cfg.sample_variance
    return options


def _labels(run: LoadedRun, n: int, cls: int | None) -> torch.Tensor | None:
    """n labels of one class, n cycled over all classes for a conditional run, or None (unconditional)."""
    if cls is not None:
        return torch.full((n,), cls, dtype=torch.int64)
    if not run.cfg.conditional:
        return None
    return torch.arange(n) % run.info.num_classes


def sample(run: LoadedRun, args: argparse.Namespace, cls: int | None) -> str:
    """`.npy`: uint8 array (N, C, H, W); `.png`: a grid."""
    out = Path(args.out)
    if out.suffix not in (".npy", ".png"):
        raise UserError(f"{out}: image samples are written as .npy (uint8 array) or .png (grid)")
    labels = _labels(run, args.n, cls)
    images = to_uint8(sample_images(run, labels, n=args.n, **sampling_options(run, args)))
    if out.suffix == ".png":
        image_plots.save_png(image_plots.tile(images, int(np.ceil(np.sqrt(len(images))))), out)
    else:
        buf = io.BytesIO()
        np.save(buf, images)
        atomic_write_bytes(out, buf.getvalue())
    return f"wrote {len(images)} images of shape {run.info.shape} to {out}"


def evaluate(run: LoadedRun, args: argparse.Namespace) -> str:
    """Classifier accuracy on held-out images, conditional accuracy of samples, Fréchet distance vs floor."""
    if not run.cfg.conditional:
        raise UserError("image evaluation asks for each class in turn; train with --conditional")
    train, test = load_image_set(run.cfg.data, "train"), load_image_set(run.cfg.data, "test")
    classifier = train_classifier(train, test, seed=args.seed)
    labels = torch.arange(run.info.num_classes).repeat_interleave(args.per_class)
    options = sampling_options(run, args)
    samples = to_uint8(sample_images(run, labels, **options))
    q = image_quality(classifier, samples, labels.numpy(), train, test, seed=args.seed)
    return (
        f"classifier held-out accuracy {q.classifier_accuracy:.1%} ({len(test)} images)\n"
        f"conditional accuracy {q.conditional_accuracy:.1%} ({len(labels)} samples, guidance {args.guidance:g})\n"
        f"Fréchet distance {q.frechet:.3f}  floor {q.floor:.3f}  ratio {q.ratio:.2f}  "
        f"(n={q.n}, classifier features, sampler {options['sampler']}, steps {options['steps']})"
    )


def plot(run: LoadedRun, args: argparse.Namespace, out: Path) -> str:
    """Class grids, all-classes grid, trajectory and the forward-noising strip of one character."""
    options = sampling_options(run, args)
    written = image_plots.class_grids(run, out, **options) if run.cfg.conditional else []
    image_plots.trajectory(run, _labels(run, 8, None), 8, out / "trajectory.png", **options)
    train = load_image_set(run.cfg.data, "train")
    names = train.class_names
    pick = names.index("Z") if "Z" in names else 0
    image_plots.forward_strip(run.schedule, train.images[np.flatnonzero(train.labels == pick)[0]], out / "forward.png")
    return f"wrote {len(written)} class grids, trajectory.png and forward.png to {out}"


def animate(run: LoadedRun, args: argparse.Namespace, out: Path) -> str:
    """A GIF of 16 samples (cycling over classes) being denoised."""
    image_plots.gif(run, _labels(run, 16, None), 16, out, frames=args.frames, **sampling_options(run, args))
    return f"wrote denoising GIF to {out}"


def write(run: LoadedRun, args: argparse.Namespace) -> str:
    """Render `args.text` with one class-conditional sample per character."""
    if not is_image_run(run):
        raise UserError("write needs an image run trained with --conditional on characters")
    out = Path(args.out)
    if out.suffix != ".png":
        raise UserError(f"{out}: write produces a .png")
    image_plots.save_png(image_plots.render_text(run, args.text, **sampling_options(run, args)), out, scale=args.scale)
    return f"wrote {args.text!r} to {out}"
