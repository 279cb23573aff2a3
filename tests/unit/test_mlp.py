"""The point MLP: sinusoidal time embedding, Fourier features, and the label embedding with "no label"."""

from __future__ import annotations

import pytest
import torch

from difflab.models.embeddings import FourierFeatures, sinusoidal_embedding
from difflab.models.mlp import MLP


def test_sinusoidal_embedding_layout_and_frequencies():
    """[cos(1000 t ω_k), sin(1000 t ω_k)] with ω_k = 10000^(-k/half) (Vaswani et al. 2017, sec. 3.5)."""
    dim, half = 16, 8
    t = torch.tensor([0.0, 0.25, 0.5, 1.0])
    emb = sinusoidal_embedding(t, dim)
    assert emb.shape == (4, dim)
    omega = torch.tensor([10_000.0 ** (-k / half) for k in range(half)])
    args = 1000.0 * t[:, None] * omega[None]
    torch.testing.assert_close(emb, torch.cat([torch.cos(args), torch.sin(args)], dim=1), rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(emb[0], torch.cat([torch.ones(half), torch.zeros(half)]))
    torch.testing.assert_close(emb[:, :half] ** 2 + emb[:, half:] ** 2, torch.ones(4, half))


def test_sinusoidal_embedding_inner_product_depends_only_on_offset():
    """e(a)·e(b) = Σ_k cos(ω_k (a - b)): why the encoding lets a network compare positions."""
    steps = torch.tensor([3.0, 40.0, 120.0, 157.0]) / 1000.0  # pairs (3, 40) and (120, 157): offset 37
    emb = sinusoidal_embedding(steps, 64).double()
    assert float(emb[0] @ emb[1]) == pytest.approx(float(emb[2] @ emb[3]), abs=1e-3)
    assert float(emb[0] @ emb[1]) < 0.9 * float(emb[0] @ emb[0])


def test_sinusoidal_embedding_separates_every_timestep_and_pads_odd_dims():
    t = torch.arange(1000) / 999.0
    emb = sinusoidal_embedding(t, 32)
    dist = torch.cdist(emb, emb) + torch.eye(1000) * 1e9
    assert float(dist.min()) > 0.05
    odd = sinusoidal_embedding(t[:3], 7)
    assert odd.shape == (3, 7)
    assert torch.equal(odd[:, -1], torch.zeros(3))


def test_fourier_features_are_fixed_cos_sin_of_projections():
    ff = FourierFeatures(2, 5, scale=1.0, seed=3)
    x = torch.randn(7, 2, generator=torch.Generator().manual_seed(0))
    out = ff(x)
    assert out.shape == (7, 10) and ff.out_dim == 10
    proj = x @ ff.freqs
    torch.testing.assert_close(out, torch.cat([torch.cos(proj), torch.sin(proj)], dim=1))
    assert not any(p.requires_grad for p in ff.parameters())  # a buffer: not trained
    torch.testing.assert_close(FourierFeatures(2, 5, seed=3).freqs, ff.freqs)  # reproducible from the seed


def test_fourier_features_of_more_than_two_columns_each_see_one_column():
    wide = FourierFeatures(5, 12, seed=1)
    x = torch.randn(6, 5, generator=torch.Generator().manual_seed(2))
    for j in range(12):  # feature j depends on column j mod 5 alone: moving any other column leaves it unchanged
        moved = x.clone()
        moved[:, [c for c in range(5) if c != j % 5]] += 1.0
        torch.testing.assert_close(wide(moved)[:, j], wide(x)[:, j])
        assert not torch.allclose(wide(x + 0.3)[:, j], wide(x)[:, j])
    assert (FourierFeatures(2, 12, seed=1).freqs != 0).all()  # in 2-D every feature sees both columns


def test_scalar_model_is_the_part1_mlp():
    model = MLP(2, time_embedding="scalar")
    assert model.inp.in_features == 3  # x and t
    assert model.time_proj is None and model.label_emb is None


@pytest.mark.parametrize("embedding", ["scalar", "sinusoidal"])
@torch.no_grad()
def test_output_depends_on_time(embedding):
    torch.manual_seed(0)
    model = MLP(2, time_embedding=embedding, fourier_features=8)
    x = torch.randn(5, 2)
    a, b = model(x, torch.full((5,), 0.1)), model(x, torch.full((5,), 0.9))
    assert a.shape == (5, 2)
    assert float((a - b).abs().max()) > 1e-3


@torch.no_grad()
def test_label_embedding_has_a_learned_no_label_entry():
    torch.manual_seed(0)
    model = MLP(2, time_embedding="sinusoidal", num_classes=3)
    assert model.null_label == 3
    assert model.label_emb.num_embeddings == 4 and model.label_emb.weight.requires_grad
    x, t = torch.randn(6, 2), torch.rand(6)
    unlabelled = model(x, t, None)
    torch.testing.assert_close(unlabelled, model(x, t, torch.full((6,), 3)))
    outs = [model(x, t, torch.full((6,), k)) for k in range(4)]
    for i in range(4):
        for j in range(i):
            assert float((outs[i] - outs[j]).abs().max()) > 1e-3


def test_unknown_time_embedding_is_rejected():
    with pytest.raises(ValueError, match="unknown time embedding"):
        MLP(2, time_embedding="learned")  # type: ignore[arg-type]
