"""How good class-conditional image samples are: a classifier's verdict and a Fréchet distance, with spread.

A small CNN is trained on the run's own training images (seconds on a CPU, no downloaded weights); its
accuracy on the held-out images says how far it can be trusted. Each draw asks for `per_class` samples of
every class; the classifier's agreement with the asked class is the conditional accuracy, and the Fréchet
distance between the samples' and held-out images' features (Heusel et al. 2017, in this classifier's
feature space) is divided by the same distance for real training images: the floor.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from difflab.errors import UserError, option
from difflab.evaluation import Evaluation, Stat
from difflab.images.classifier import train_classifier
from difflab.images.defaults import IMAGES
from difflab.images.metrics import image_quality
from difflab.images.pixels import to_uint8
from difflab.images.sets import image_sets
from difflab.limits import check_number
from difflab.progress import stage

if TYPE_CHECKING:
    from difflab.kind import RunView
    from difflab.sampling import Sampling

#: The targets the project holds image runs to (benchmarks/RESULTS-mnist5k.md).
TARGET_ACCURACY = 0.95
TARGET_FRECHET_RATIO = 3.0


def evaluate(
    run: RunView,
    sampling: Sampling,
    *,
    n: int | None,
    draws: int | None,
    label: int | str | None,
    nll: bool,
    seed: int,
    progress: bool | None,
) -> Evaluation:
    """Conditional accuracy and Fréchet ratio over `draws` draws of `n` samples per class."""
    if nll:
        raise UserError(f"{option('nll')} is the bound of point runs; image runs are judged by a classifier")
    if not run.config.conditional or not run.class_names:
        raise UserError("image evaluation asks for each class in turn; train the run with conditional classes")
    per_class = check_number("per_class", IMAGES.evaluate_size[1] if n is None else n)
    draws = check_number("draws", IMAGES.evaluate_draws if draws is None else draws)
    seed = check_number("seed", seed)
    start = time.perf_counter()
    train, test = image_sets(run)
    classes = [run.class_index(label)] if label is not None else list(range(len(run.class_names)))
    labels = torch.tensor(classes).repeat_interleave(per_class)
    with stage(f"training the judging classifier on {len(train)} images", 1, progress, unit="fit"):
        classifier = train_classifier(train, test, seed=seed)
    accuracy, frechet, floor = [], [], []
    with stage(f"evaluating {draws} draws of {len(labels)} images", draws, progress, unit="draw") as bar:
        for i in range(draws):
            samples = to_uint8(run.draw(len(labels), sampling, labels=labels, seed=seed + i, progress=False))
            q = image_quality(classifier, samples, labels.numpy(), train, test, seed=seed + i)
            accuracy.append(q.conditional_accuracy)
            frechet.append(q.frechet)
            floor.append(q.floor)
            bar.update(1)
    metrics = {
        "accuracy": Stat(accuracy),
        "frechet": Stat(frechet),
        "frechet_floor": Stat(floor),
        "frechet_ratio": Stat([f / max(sum(floor) / len(floor), 1e-12) for f in frechet]),
        "classifier_accuracy": Stat([classifier.test_accuracy]),
    }
    m = metrics
    lines = [
        f"classifier held-out accuracy {classifier.test_accuracy:.1%} ({len(test)} images)",
        f"conditional accuracy {m['accuracy'].format(3)} ({len(labels)} samples a draw, {sampling.describe(True)})",
        f"Fréchet distance {m['frechet'].format(3)}  floor {m['frechet_floor'].format(3)}  "
        f"ratio {m['frechet_ratio'].format()}  (classifier features)",
        f"{draws} draws; mean ± std over draws. Ratio 1: as close to held-out images as real training images are.",
    ]
    on_target = m["accuracy"].mean >= TARGET_ACCURACY and m["frechet_ratio"].mean <= TARGET_FRECHET_RATIO
    words = "on target" if on_target else "below target"
    verdict = (
        f"verdict: {words} — conditional accuracy {m['accuracy'].format(3)} (target ≥ {TARGET_ACCURACY:g}), "
        f"Fréchet ratio {m['frechet_ratio'].format()} (target ≤ {TARGET_FRECHET_RATIO:g})"
    )
    return Evaluation(
        kind="images",
        metrics=metrics,
        headline=["accuracy", "frechet_ratio"],
        verdict=verdict,
        n=per_class,
        draws=draws,
        seed=seed,
        sampling=sampling.to_dict(),
        details={"per_class": per_class, "classes": len(classes), "test_images": len(test)},
        lines=lines,
        seconds=time.perf_counter() - start,
    )
