"""Built-in datasets and user files: shapes, seeds, labels, i.i.d. draws and every bad-input case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from difflab.data.files import read_points
from difflab.data.normalize import MinMaxScaler
from difflab.data.source import data_title
from difflab.data.toy import DATASETS, builtin
from difflab.errors import UserError
from difflab.metrics import energy_distance


@pytest.mark.parametrize("name", list(DATASETS))
def test_builtin_shapes_and_seeds(name: str) -> None:
    a, b, c = builtin(name, 500, 1), builtin(name, 500, 1), builtin(name, 500, 2)
    assert a.x.shape == (500, 4 if name == "complex" else 2)
    assert np.isfinite(a.x).all()
    np.testing.assert_array_equal(a.x, b.x)
    assert not np.array_equal(a.x, c.x)
    if a.labels is not None:
        assert a.labels.shape == (500,) and a.class_names is not None
        assert set(np.unique(a.labels)) == set(range(len(a.class_names)))


def test_series_parameters() -> None:
    p = builtin("parabola", 50_000, 0).x
    assert abs(p[:, 0].std() - 4.0) < 0.05
    resid = p[:, 1] - p[:, 0] ** 2 / 4
    assert abs(resid.mean()) < 0.02 and abs(resid.std() - 1.0) < 0.02
    m = builtin("moons", 20_000, 0)
    upper = m.x[m.labels == 0]
    radius = np.hypot(upper[:, 0], upper[:, 1])
    assert abs(radius.mean() - 1.0) < 0.002 and radius.std() < 0.015  # noise 0.01
    c = builtin("circles", 20_000, 0)
    r = np.hypot(c.x[:, 0], c.x[:, 1])
    assert abs(r[c.labels == 1].mean() - 0.1) < 0.002  # factor 0.1
    cx = builtin("complex", 1000, 0).x
    assert cx[:, :2].mean() > 14 and abs(cx[:, 2:].mean()) < 0.2  # moons + 15 beside circles


def test_draws_are_iid_not_evenly_spaced() -> None:
    """Two independent draws must differ like i.i.d. samples do: more than two evenly spaced grids would."""
    from sklearn.datasets import make_moons

    a, b = (torch.as_tensor(builtin("moons", 1000, s).x) for s in (1, 2))
    grid_a = torch.as_tensor(make_moons(1000, noise=0.01, random_state=1)[0])
    grid_b = torch.as_tensor(make_moons(1000, noise=0.01, random_state=2)[0])
    assert energy_distance(a, b) > 3 * energy_distance(grid_a, grid_b)


def test_minmax_round_trip_and_range() -> None:
    x = np.random.default_rng(0).normal(size=(100, 3)) * [1, 10, 100]
    sc = MinMaxScaler.fit(x)
    y = sc.transform(x)
    assert y.min() == pytest.approx(-1) and y.max() == pytest.approx(1)
    np.testing.assert_allclose(sc.inverse(y), x)
    np.testing.assert_allclose(MinMaxScaler.from_dict(sc.to_dict()).inverse(y), x)


def test_csv_with_header_and_string_labels(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("a,label,b\n1,cat,2\n3,dog,4\n5,cat,6\n")
    d = read_points(f)
    np.testing.assert_array_equal(d.x, [[1, 2], [3, 4], [5, 6]])
    assert d.class_names == ["cat", "dog"]
    np.testing.assert_array_equal(d.labels, [0, 1, 0])


def test_csv_without_header_and_npy(tmp_path: Path) -> None:
    f = tmp_path / "d.csv"
    f.write_text("1,2,3\n4,5,6\n")
    assert read_points(f).x.shape == (2, 3)
    g = tmp_path / "d.npy"
    np.save(g, np.arange(10.0))
    assert read_points(g).x.shape == (10, 1)


BAD_FILES = {
    "missing.csv": (None, "no such file"),
    "empty.csv": ("", "empty"),
    "header_only.csv": ("x,y\n", "no data rows"),
    "words.csv": ("x,y\n1,2\n3,abc\n", "not a number"),
    "ragged.csv": ("1,2\n3,4,5\n", "ragged"),
    "nan.csv": ("1,2\n3,nan\n", "non-finite"),
    "inf.csv": ("1,2\ninf,4\n", "non-finite"),
    "one_row.csv": ("1,2\n", "at least 2 rows"),
    "data.parquet": ("x", "unknown file type"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_csv_files_raise_user_error(tmp_path: Path, name: str) -> None:
    content, message = BAD_FILES[name]
    f = tmp_path / name
    if content is not None:
        f.write_text(content)
    with pytest.raises(UserError, match=message) as info:
        read_points(f)
    assert name in str(info.value)


def test_bad_npy_files(tmp_path: Path) -> None:
    cases = {
        "3d.npy": (np.zeros((4, 2, 2)), "shape"),
        "str.npy": (np.array(["a", "b"]), "numeric"),
        "obj.npy": (np.array([{"a": 1}, None], dtype=object), "plain numeric"),
        "nan.npy": (np.array([[1.0, np.nan], [2.0, 3.0]]), "non-finite"),
    }
    for name, (arr, message) in cases.items():
        f = tmp_path / name
        np.save(f, arr, allow_pickle=True)
        with pytest.raises(UserError, match=message):
            read_points(f)
    trunc = tmp_path / "trunc.npy"
    np.save(trunc, np.zeros((100, 2)))
    trunc.write_bytes(trunc.read_bytes()[:90])
    with pytest.raises(UserError, match=r"trunc\.npy"):
        read_points(trunc)


@pytest.mark.parametrize(
    ("spec", "title"),
    [
        ("moons", "moons"),
        ("/home/someone/data/spiral.csv", "spiral.csv"),
        ("runs/x.npy", "x.npy"),
        ("emnist:/data/emnist:balanced", "emnist:emnist:balanced"),
        ("images:/srv/pictures/cats", "images:cats"),
        ("mnist5k", "mnist5k"),
    ],
)
def test_figure_titles_name_the_data_without_its_folders(spec: str, title: str) -> None:
    assert data_title(spec) == title
