"""Device choice and precision: clear errors for missing hardware, bf16 autocast when asked."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from difflab.distributed import resolve_device
from difflab.errors import UserError
from difflab.training_step import autocast_dtype
from tests.helpers import tiny_trainer


def test_missing_hardware_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(UserError, match="device='cuda', but PyTorch sees no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(UserError, match="device='mps', but the Apple MPS backend is not available"):
        resolve_device("mps")


def test_auto_precision_is_bf16_on_cuda_only() -> None:
    assert autocast_dtype("auto", torch.device("cuda", 0)) is torch.bfloat16
    assert autocast_dtype("auto", torch.device("cpu")) is None
    assert autocast_dtype("fp32", torch.device("cuda", 0)) is None


def test_bf16_autocast_runs_the_network_in_bf16_and_keeps_fp32_weights(tmp_path: Path) -> None:
    trainer = tiny_trainer(tmp_path, precision="bf16")
    seen: list[torch.dtype] = []
    trainer.model.inp.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    loss, _ = trainer.train_step()
    assert seen == [torch.bfloat16] and math.isfinite(loss)
    assert trainer.objective(trainer.train_denoiser, trainer.x[:8], None).value.dtype == torch.float32
    assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
