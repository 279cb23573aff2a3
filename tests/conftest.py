"""Shared test fixtures: a deterministic torch and an exact denoiser for Gaussian data."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic() -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)
