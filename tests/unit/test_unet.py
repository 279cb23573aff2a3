"""The U-Net: shapes for several image sizes, conditioning that matters, sizes, and bad shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from difflab.config import make_config
from difflab.data.normalize import MinMaxScaler
from difflab.data.training_set import DataInfo
from difflab.errors import UserError
from difflab.model import build_denoiser
from difflab.models.unet import UNet, param_count


def _randomize_output(model: UNet) -> UNet:
    """Residual branches and the output start at zero (identity at init); give them weights to see through."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and not m.weight.any():
            nn.init.normal_(m.weight, std=0.05)
    return model


@pytest.mark.parametrize(("c", "h", "w"), [(1, 28, 28), (3, 8, 12), (1, 8, 8)])
def test_output_shape(c: int, h: int, w: int) -> None:
    model = UNet(c, num_classes=5, out_channels=2 * c)
    out = model(torch.randn(3, c, h, w), torch.rand(3), torch.tensor([0, 4, 5]))
    assert out.shape == (3, 2 * c, h, w) and torch.isfinite(out).all()


def test_time_and_class_change_the_output() -> None:
    model = _randomize_output(UNet(1, num_classes=3)).eval()
    x, t = torch.randn(2, 1, 28, 28), torch.full((2,), 0.5)
    base = model(x, t, torch.tensor([0, 0]))
    assert not torch.allclose(base, model(x, t, torch.tensor([1, 1])), atol=1e-4)
    assert not torch.allclose(base, model(x, torch.full((2,), 0.9), torch.tensor([0, 0])), atol=1e-4)
    torch.testing.assert_close(model(x, t, None), model(x, t, torch.tensor([3, 3])))  # None = the "no label" entry


def test_items_do_not_mix_in_eval() -> None:
    model = _randomize_output(UNet(1, num_classes=2)).eval()
    x, t, c = torch.randn(4, 1, 28, 28), torch.rand(4), torch.tensor([0, 1, 2, 0])
    torch.testing.assert_close(model(x, t, c)[1:2], model(x[1:2], t[1:2], c[1:2]), atol=1e-5, rtol=1e-4)


def test_sizes_and_parameter_count() -> None:
    small, base = param_count(UNet(1, size="small", num_classes=10)), param_count(UNet(1, size="base", num_classes=10))
    assert 500_000 < small < 1_500_000 and base > 4 * small
    with pytest.raises(ValueError, match="unknown U-Net size"):
        UNet(1, size="huge")  # type: ignore[arg-type]


def test_bad_shapes() -> None:
    with pytest.raises(ValueError, match="divisible by 4"):
        UNet(1)(torch.randn(1, 1, 30, 28), torch.rand(1))
    cfg = make_config({"model": "unet", "data": "x"})
    scaler = MinMaxScaler(np.array([0.0]), np.array([255.0]))
    with pytest.raises(UserError, match="divisible by 4"):
        build_denoiser(cfg, DataInfo((1, 30, 30), scaler, None))
    with pytest.raises(UserError, match="needs images"):
        build_denoiser(cfg, DataInfo((2,), scaler, None))
