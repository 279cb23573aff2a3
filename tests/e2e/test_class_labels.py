"""Labels end to end: CSV label columns, labelled built-in sets, `--class`, `--clip`, class-coloured figures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from difflab.cli import main
from difflab.data.files import read_csv
from difflab.data.toy import builtin
from difflab.errors import UserError
from difflab.metrics import nearest_neighbour_labels


def test_csv_integer_labels_keep_numeric_order(tmp_path):
    path = tmp_path / "pts.csv"
    path.write_text("x,y,label\n0,1,10\n2,3,2\n4,5,-1\n")
    data = read_csv(path)
    assert data.class_names == ["-1", "2", "10"]
    assert data.labels.tolist() == [2, 1, 0]


def test_csv_empty_label_is_a_clear_error(tmp_path):
    path = tmp_path / "pts.csv"
    path.write_text("x,y,label\n0,1,a\n2,3,\n")
    with pytest.raises(UserError, match="line 3: empty 'label'"):
        read_csv(path)


LABELLED_SETS = [("moons", 2), ("circles", 2), ("8gaussians", 8), ("circles_vs_moons", 2)]


@pytest.mark.parametrize(("name", "classes"), LABELLED_SETS)
def test_labelled_builtin_sets(name, classes):
    data = builtin(name, 4000, 0)
    assert len(data.class_names) == classes
    assert set(np.unique(data.labels)) == set(range(classes))


def test_circles_vs_moons_classes_can_be_told_apart():
    """Fresh points of one class are nearest to points of the same class (the guidance benchmark needs this)."""
    a, ref = builtin("circles_vs_moons", 2000, 5), builtin("circles_vs_moons", 10_000, 6)
    pred = nearest_neighbour_labels(torch.as_tensor(a.x), torch.as_tensor(ref.x), torch.as_tensor(ref.labels))
    assert float((pred.numpy() == a.labels).mean()) > 0.985


def _train(tmp_path, data: str) -> str:
    run = str(tmp_path / "run")
    argv = ["train", "--data", data, "--out", run, "--conditional", "--steps", "30", "--timesteps", "10"]
    assert main([*argv, "--n-data", "300", "--batch-size", "64", "--hidden", "16", "--depth", "1"]) == 0
    return run


def test_class_by_name_index_and_errors(tmp_path, capsys):
    csv = tmp_path / "pts.csv"
    rng = np.random.default_rng(0)
    points = rng.normal(size=(300, 2))
    rows = "".join(f"{x:.3f},{y:.3f},{lab}\n" for (x, y), lab in zip(points, [3, 5] * 150, strict=True))
    csv.write_text("x,y,label\n" + rows)
    run = _train(tmp_path, str(csv))
    out = tmp_path / "s.npy"
    assert main(["sample", run, "--n", "20", "--out", str(out), "--class", "5", "--clip", "dynamic"]) == 0
    assert np.load(out).shape == (20, 2)
    capsys.readouterr()
    # integer class names: "0" is not silently taken as an index
    assert main(["sample", run, "--n", "5", "--out", str(out), "--class", "0"]) == 2
    assert "unknown class '0'; this run's classes are: 3, 5" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["sample", run, "--n", "5", "--out", str(out), "--clip", "sometimes"])
    assert exit_info.value.code == 2
    assert "choose from 'none', 'clip', 'dynamic'" in capsys.readouterr().err


def test_plot_and_animate_a_conditional_run(tmp_path, capsys):
    run = _train(tmp_path, "circles_vs_moons")
    assert main(["plot", run, "--n", "60"]) == 0
    assert "guidance.png" in capsys.readouterr().out
    for name in ("samples.png", "reverse.png", "guidance.png"):
        assert (tmp_path / "run" / "plots" / name).stat().st_size > 1000
    assert main(["animate", run, "--n", "60", "--frames", "3", "--class", "moons", "--guidance", "2"]) == 0
    assert (tmp_path / "run" / "plots" / "denoising.gif").exists()
    assert main(["sample", run, "--n", "5", "--out", str(tmp_path / "s.csv"), "--class", "1"]) == 0
