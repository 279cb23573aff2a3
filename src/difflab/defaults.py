"""The defaults of a kind of data, as plain tables: training options, sampling, evaluation and figure sizes.

Each kind (`difflab.points`, `difflab.images`) fills one `KindDefaults` in its `defaults` module; the library
reads them through the kind, and the command line builds its --help from the same tables. Nothing here
imports torch, so `difflab --help` stays quick.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from difflab.types import ClipKind, SamplerName, Spacing

#: Frames of a denoising animation before the final one, for every kind (`Run.animate`, `difflab animate`).
ANIMATION_FRAMES = 40


@dataclass(frozen=True)
class SamplingDefaults:
    """How a kind's runs sample when the user leaves an option out."""

    sampler: SamplerName  # when neither sampler nor steps is given
    few_step_sampler: SamplerName  # when only --steps K is given
    steps: int | None  # None: every trained step
    ancestral_steps: int | None  # the steps of DDPM's ancestral chain when it is asked for by name; None: all
    spacing: Spacing
    guidance: float
    clip: ClipKind | None  # None: the run's own `clip` option
    chunk_size: int
    #: The sampler and clipping for runs whose network predicts the noise (ε, score), when the user chose none:
    #: their x̂0 = (x_t − σ ε̂)/α blows up at the noisiest steps of a few-step solver. None: as for any run.
    #: Below `few_step_below` steps the spacing is `few_step_spacing` instead of `spacing` (None: `spacing` always).
    few_step_spacing: Spacing | None = None
    few_step_below: int = 0
    noise_target_sampler: SamplerName | None = None
    noise_target_steps: int | None = None
    noise_target_spacing: Spacing | None = None
    noise_target_clip: ClipKind | None = None


@dataclass(frozen=True)
class KindDefaults:
    """Everything about a kind of data that the CLI and the registry need before any heavy import.

    `training` holds the options whose default differs from `TrainConfig`'s for every dataset of the kind,
    `per_set` those of single built-in sets; the user's own values win over both. A spec belongs to the kind
    when it is one of `spec_names` or starts with one of `spec_prefixes`; the kind marked `catch_all` takes
    every spec no other kind claims. An array belongs to the kind whose `array_ndims` holds its number of
    dimensions; a run written before kinds were recorded, to the one whose `item_ndims` holds its item's.
    """

    name: str
    item_name: str  # "points", "images": for messages
    sampling: SamplingDefaults
    training: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    per_set: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: MappingProxyType({}))
    #: The training options of a student (`difflab distill`) that differ from its teacher's: budget, lr, pairs.
    distilling: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: A student trains for this share of its teacher's steps where that is more than `distilling["steps"]`.
    distill_share: float = 0.0
    #: `difflab evaluate`: the option that sizes a draw ("n" items, or "per_class"), its default, and draws.
    evaluate_size: tuple[str, int] = ("n", 5000)
    evaluate_draws: int = 4
    #: Items a figure shows (`plot`: per panel, or per class) and a GIF animates, and what `plot_n` counts.
    plot_n: int = 3000
    plot_n_means: str = "points per panel"
    animate_n: int = 2000
    #: Items drawn for each progress snapshot while training (`sample_every`).
    snapshot_n: int = 1000
    sample_suffixes: tuple[str, ...] = (".npy",)
    writes_text: bool = False  # `difflab write` renders text with one sample per character
    spec_names: tuple[str, ...] = ()
    spec_prefixes: tuple[str, ...] = ()
    catch_all: bool = False
    array_ndims: tuple[int, ...] = ()
    array_shape: str = ""  # for messages: "points (N, D)"
    item_ndims: tuple[int, ...] = ()

    def training_for(self, spec: str) -> dict[str, Any]:
        """The training defaults for one dataset spec of this kind."""
        return {**self.training, **self.per_set.get(spec, {})}

    def student_budget(self, teacher_steps: int) -> int:
        """A student's default training steps: its kind's, or its share of the teacher's when that is more."""
        return max(int(self.distilling.get("steps", 0)), int(teacher_steps * self.distill_share))

    def claims_spec(self, spec: str) -> bool:
        return spec in self.spec_names or spec.startswith(self.spec_prefixes)
