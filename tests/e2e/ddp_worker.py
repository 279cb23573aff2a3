"""Run under torchrun by test_distributed.py: `difflab train` exactly as users run it, plus a dump of each
rank's final weights so the test can check that every rank holds the same model and EMA."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from difflab.checkpoint import save_weights
from difflab.cli import main
from difflab.trainer import Trainer, TrainResult

real_fit = Trainer.fit


def fit_and_dump(self: Trainer, **kwargs: bool | None) -> TrainResult:
    result = real_fit(self, **kwargs)
    weights = {f"model.{k}": v for k, v in self.model.state_dict().items()}
    weights |= {f"ema.{k}": v for k, v in self.ema.state_dict().items()}
    save_weights(Path(os.environ["DUMP_DIR"]) / f"rank{self.world.rank}.safetensors", weights)
    return result


Trainer.fit = fit_and_dump  # type: ignore[method-assign]
sys.exit(main(sys.argv[1:]))
