"""difflab: denoising diffusion models with correct math and measured results.

    import difflab
    run = difflab.train("moons", steps=3000)   # or difflab.train(my_array, out="runs/mine")
    points = run.sample(2000)
    print(run.evaluate().summary())
    run.plot("figures/")

The names below are loaded on first use, so `import difflab` (and the CLI's start-up) stays fast; the
building blocks are modules of this package (`difflab.schedule`, `difflab.process`, `difflab.samplers`, ...).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from difflab.version import __version__

if TYPE_CHECKING:
    from difflab.api import Run, load, train
    from difflab.callbacks import Event
    from difflab.comparison import Comparison, compare
    from difflab.config import TrainConfig
    from difflab.data.catalog import dataset, datasets
    from difflab.data.toy import PointData
    from difflab.errors import UserError
    from difflab.evaluation import Evaluation, Stat
    from difflab.sampling import Sampling, SamplingOptions

_EXPORTS = {
    "train": "difflab.api",
    "load": "difflab.api",
    "Run": "difflab.api",
    "Event": "difflab.callbacks",
    "compare": "difflab.comparison",
    "Comparison": "difflab.comparison",
    "TrainConfig": "difflab.config",
    "SamplingOptions": "difflab.sampling",
    "Sampling": "difflab.sampling",
    "Evaluation": "difflab.evaluation",
    "Stat": "difflab.evaluation",
    "UserError": "difflab.errors",
    "dataset": "difflab.data.catalog",
    "datasets": "difflab.data.catalog",
    "PointData": "difflab.data.toy",
}

__all__ = [
    "Comparison",
    "Evaluation",
    "Event",
    "PointData",
    "Run",
    "Sampling",
    "SamplingOptions",
    "Stat",
    "TrainConfig",
    "UserError",
    "__version__",
    "compare",
    "dataset",
    "datasets",
    "load",
    "train",
]


def __getattr__(name: str) -> Any:
    """Load an exported name, or a submodule (`difflab.schedule`), on first use.

    An exported name is bound in the package once loaded. No submodule has an exported name (the comparison
    lives in `difflab.comparison`), so importing a submodule never replaces `difflab.compare` by a module.
    """
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    try:
        return importlib.import_module(f"difflab.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"difflab.{name}":
            raise
        raise AttributeError(f"module 'difflab' has no attribute {name!r}") from None
