"""How close point samples are to the data, with error bars.

Each of `draws` sample draws is compared with a fresh draw of the data ("truth") by the energy distance
(Székely & Rizzo) and by k-NN precision and recall (Kynkäänniemi et al. 2019), all in coordinates
standardized by the truth. The same figures for an independent draw of the data against the truth are the
floors: what a perfect model would score at this n. The energy distance's floor, which every ratio divides by, is
its expectation (`Reference.expected_floor`), not the mean of a few measured floors, whose noise would scale
every ratio of an evaluation alike. Built-in sets are drawn fresh and i.i.d.; a user file is split at random into
two disjoint halves, again for every draw.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import torch

from difflab.data.source import load_points
from difflab.data.toy import PointData
from difflab.errors import UserError, option, setting
from difflab.evaluation import Evaluation, Stat
from difflab.limits import check_number
from difflab.metrics import Reference, standardize_like
from difflab.points.defaults import POINTS
from difflab.progress import stage
from difflab.vlb import nll_bits_per_dim

if TYPE_CHECKING:
    from difflab.kind import RunView
    from difflab.sampling import Sampling

#: Independent (truth, other) data pairs for the floors; at least as many as sample draws.
FLOOR_DRAWS = 4
#: k of the k-NN balls. Kynkäänniemi et al. 2019 use k = 3 for images; for thin 2-D structures at n = 3000 k = 3
#: leaves a fresh draw of moons at precision 0.95 (its own noise), k = 10 at 0.999, which still drops 3.6 points
#: when 4% of the samples lie between the moons (tests/unit/test_metrics.py).
K = 10
#: The fewest points a set may have: each point needs K others around it.
MIN_N = K + 1


def reference_pairs(
    run: RunView, n: int, count: int, seed: int, label: int | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """`count` pairs (truth, other) of independent data draws of up to n points each (of class `label`)."""
    spec = run.source.spec
    if run.kind.is_builtin(spec):
        classes = len(run.class_names or []) or 1
        size = n if label is None else 3 * n * classes
        pairs = []
        for j in range(count):
            a, b = (load_points(spec, size, seed + 1_000_003 + 2 * j + k) for k in (0, 1))
            pairs.append((_of_class(a, label)[:n], _of_class(b, label)[:n]))
        return pairs
    data = run.kind.from_copy(run.data_copy())
    x = _of_class(data, label)
    m = min(n, len(x) // 2)
    if m < MIN_N:
        raise UserError(
            f"the run's data has {len(x)} points{' of that class' if label is not None else ''}; "
            f"evaluation compares two disjoint halves of at least {MIN_N} points, so it needs {2 * MIN_N}"
        )
    pairs = []
    for j in range(count):
        order = np.random.default_rng(seed + j).permutation(len(x))
        pairs.append((x[order[:m]], x[order[m : 2 * m]]))
    return pairs


def _of_class(data: PointData, label: int | None) -> np.ndarray:
    if label is None:
        return data.x
    if data.labels is None:
        raise UserError("this data has no labels to pick a class from")
    return data.x[data.labels == label]


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
    """Energy-distance ratio and k-NN precision/recall with their floors, or the NLL bound (`nll`)."""
    n = check_number("n", POINTS.evaluate_size[1] if n is None else n)
    draws = check_number("draws", POINTS.evaluate_draws if draws is None else draws)
    seed = check_number("seed", seed)
    if n < MIN_N:
        raise UserError(f"{setting('n', n)} is too few: k-NN precision with k = {K} needs at least {MIN_N} points")
    cls = None if label is None else run.class_index(label)
    start = time.perf_counter()
    pairs = reference_pairs(run, n, max(FLOOR_DRAWS, draws), seed, cls)
    size = min(len(x) for pair in pairs for x in pair)
    if size < MIN_N and not nll:
        raise UserError(f"the data has only {size} points of that class in a draw; evaluation needs {MIN_N}")
    pairs = [(truth[:size], other[:size]) for truth, other in pairs]
    if nll:
        return _nll(run, sampling, pairs, draws, seed, progress, start)
    labels = run.labels_for(size, label)
    references, floors, measured, floor_p, floor_r = [], [], [], [], []
    for truth, other in pairs:
        t, o = standardize_like(torch.as_tensor(truth), torch.as_tensor(other))
        reference = Reference.of(t, K)
        references.append((torch.as_tensor(truth), reference))
        floors.append(reference.expected_floor(size))
        distance, p, r = reference.compare(o, K)
        measured.append(distance)
        floor_p.append(p)
        floor_r.append(r)
    floor = float(np.mean(floors))  # the expectation, not the mean of `measured` (Reference.expected_floor says why)
    distances, precisions, recalls = [], [], []
    with stage(f"evaluating {draws} draws of {size} points", draws, progress, unit="draw") as bar:
        for i in range(draws):
            x = run.draw(size, sampling, labels=labels, seed=seed + i, progress=False)
            truth, reference = references[i]
            _, s = standardize_like(truth, torch.as_tensor(run.model.to_data_units(x)))
            distance, p, r = reference.compare(s, K)
            distances.append(distance)
            precisions.append(p)
            recalls.append(r)
            bar.update(1)
    metrics = {
        "ratio": Stat([d / floor for d in distances]),
        "distance": Stat(distances),
        "floor": Stat(floors),
        "measured_floor": Stat(measured),
        "precision": Stat(precisions),
        "precision_floor": Stat(floor_p),
        "recall": Stat(recalls),
        "recall_floor": Stat(floor_r),
    }
    conditional = run.config.conditional
    what = sampling.describe(conditional and label is not None)
    cls_text = f", class {run.class_names[cls]}" if cls is not None and run.class_names else ""
    m = metrics
    lines = [
        f"energy distance ratio {m['ratio'].format()}  (distance {m['distance'].format(5)}, "
        f"floor {m['floor'].mean:.5f}, and {m['measured_floor'].format(5)} measured on {len(measured)} draws of the "
        "data)",
        f"k-NN precision {m['precision'].format(3)}  (floor {m['precision_floor'].format(3)});  "
        f"recall {m['recall'].format(3)}  (floor {m['recall_floor'].format(3)}); k = {K}",
        f"{draws} draws of n = {size}{cls_text}, {what}, standardized coordinates; mean ± std over draws",
        "ratio = distance / floor, where the floor is the expected distance between two independent draws of the "
        "data, E‖X - X'‖ · 2/n: 1 means as close as another draw of the data, whose own ratio is spread as the "
        "measured floor is. Precision below its floor means samples off the data (blur); recall below, missed data.",
    ]
    return Evaluation(
        kind="points",
        metrics=metrics,
        headline=["ratio", "precision", "recall"],
        verdict=verdict(metrics),
        n=size,
        draws=draws,
        seed=seed,
        sampling=sampling.to_dict(),
        details={"k": K, "floor_draws": len(pairs), "label": None if cls is None else run.class_names[cls]},
        lines=lines,
        seconds=time.perf_counter() - start,
    )


#: The bounds of the verdict: a ratio as close to the data as the benchmarks call close, precision and recall within
#: this of their floors (benchmarks/README.md, "sharp").
CLOSE_RATIO = 1.5
NEAR_FLOOR = 0.01


def _below_floor(m: dict[str, Stat], name: str) -> bool:
    """Whether precision (samples off the data) or recall (data missed) is further than NEAR_FLOOR below its floor."""
    return m[name].mean < m[f"{name}_floor"].mean - NEAR_FLOOR


def sharp(m: dict[str, Stat]) -> bool:
    """The benchmarks' "sharp": a ratio within CLOSE_RATIO and precision within NEAR_FLOOR of its floor."""
    return m["ratio"].mean <= CLOSE_RATIO and not _below_floor(m, "precision")


def verdict(m: dict[str, Stat]) -> str:
    """One line: how close the samples are, in words, with the figures that say so."""
    ratio, precision = m["ratio"], m["precision"]
    blur, missed = _below_floor(m, "precision"), _below_floor(m, "recall")
    if ratio.mean <= CLOSE_RATIO and not blur and not missed:
        words = "close to the data"
    elif ratio.mean <= CLOSE_RATIO:
        words = "close in distribution, but " + ("blurred (samples off the data)" if blur else "missing some data")
    else:
        words = "not yet close to the data" + (" and blurred" if blur else "")
    return (
        f"verdict: {words} — ratio {ratio.format()} (1 = another draw of the data; ≤ {CLOSE_RATIO:g} counts as "
        f"close), precision {precision.format(3)} against a floor of {m['precision_floor'].mean:.3f}"
    )


def _nll(
    run: RunView,
    sampling: Sampling,
    pairs: list[tuple[np.ndarray, np.ndarray]],
    draws: int,
    seed: int,
    progress: bool | None,
    start: float,
) -> Evaluation:
    """The variational bound in bits/dim of fresh data (normalized units), one Monte Carlo estimate per draw."""
    if run.config.conditional:
        raise UserError(f"{option('nll')} is defined for unconditional runs")
    if sampling.sampler != "ddpm":
        raise UserError(f"{option('nll')} is the bound of the ancestral (ddpm) chain; drop {option('sampler')}")
    schedule = sampling.schedule(run.model)
    parts: dict[str, list[float]] = {"nll": [], "prior": [], "diffusion": [], "decoder": []}
    with stage(f"variational bound over {len(schedule)} steps, {draws} draws", draws, progress, unit="draw") as bar:
        for i in range(draws):
            x0 = torch.as_tensor(run.info.scaler.transform(pairs[i][0]), dtype=torch.float64)
            generator = torch.Generator().manual_seed(seed + i)
            options = {"variance": sampling.variance, "generator": generator, "device": run.model.device}
            bpd = nll_bits_per_dim(run.model.denoiser_for(), schedule, x0, **options)
            for key, value in zip(parts, (bpd.total, bpd.prior, bpd.diffusion, bpd.decoder), strict=True):
                parts[key].append(value)
            bar.update(1)
    metrics = {k: Stat(v) for k, v in parts.items()}
    lines = [
        f"NLL bound {metrics['nll'].format(4)} bits/dim  (prior {metrics['prior'].format(4)}, diffusion "
        f"{metrics['diffusion'].format(4)}, decoder {metrics['decoder'].format(4)})",
        f"{draws} draws of n = {len(pairs[0][0])}, variance {sampling.variance}, {len(schedule)} steps, "
        "normalized units; mean ± std over draws",
    ]
    return Evaluation(
        kind="points-nll",
        metrics=metrics,
        headline=["nll"],
        n=len(pairs[0][0]),
        draws=draws,
        seed=seed,
        sampling=sampling.to_dict(),
        lines=lines,
        seconds=time.perf_counter() - start,
    )
