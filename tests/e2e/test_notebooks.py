"""The tutorial notebooks: stored with the outputs of their current code, runnable top to bottom (in fast mode,
DIFFLAB_FAST=1, every budget shrinks), and the runs shipped for full mode draw what they drew when shipped."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

import difflab
from difflab.run import CONFIG, DATA, MODEL, STATE

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
_spec = importlib.util.spec_from_file_location("notebook_tool", ROOT / "tools" / "notebooks.py")
assert _spec is not None and _spec.loader is not None
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)
RECORDED = json.loads(tool.RECORDED.read_text()) if tool.RECORDED.is_file() else {}


def test_the_three_parts_are_there() -> None:
    assert [p.name.split("_")[0] for p in NOTEBOOKS] == ["part1", "part2", "part3"]


def _images(cell: nbformat.NotebookNode) -> int:
    return sum(1 for o in cell.get("outputs", []) for kind in o.get("data", {}) if kind.startswith("image/"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_stored_outputs_are_those_of_the_current_code(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    stored = notebook.metadata.get("difflab", {})
    assert stored.get("mode") == "full", "stored without full-mode outputs: run make notebooks"
    assert stored.get("code_sha256") == tool.code_hash(notebook), "code changed after its outputs: make notebooks"
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    assert not [o for c in code for o in c.outputs if o.get("output_type") == "error"]
    drawing = [c for c in code if "plt.show()" in c.source or "display(Image" in c.source]
    assert drawing and all(_images(c) >= 1 for c in drawing), "a cell that draws stored no picture"
    gifs = [o for c in code for o in c.outputs if "image/gif" in o.get("data", {})]
    assert all("data:image/gif" in o.data.get("text/html", "") for o in gifs), "the docs site shows no image/gif"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_fast_mode(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIFFLAB_FAST", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": tmp_path}})
    client.execute()  # raises CellExecutionError naming the failing cell
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors


def test_every_shipped_run_is_recorded_and_holds_sampling_weights_only() -> None:
    shipped = sorted(p.parent.name for p in tool.PRETRAINED.glob(f"*/{CONFIG}"))
    assert shipped and shipped == sorted(RECORDED)
    heavy = [p.name for p in tool.PRETRAINED.rglob("*") if p.name in (STATE, MODEL, DATA)]
    assert not heavy, "a shipped run carries more than its EMA weights"
    listed = tool.LISTING.read_text()
    assert all(f"| `{name}` |" in listed for name in shipped), "make notebook-runs lists every run in README.md"


def test_a_shipped_run_evaluates_as_recorded_within_its_spread() -> None:
    """The recorded evaluation is what a user gets: moons (a cheap one) evaluated again at seed 0."""
    recorded = RECORDED["moons"]["evaluation"]
    again = tool.evaluation(difflab.load(tool.PRETRAINED / "moons"))
    assert json.loads(json.dumps(again["sampling"])) == recorded["sampling"]
    for name in recorded["headline"]:
        figure = recorded["metrics"][name]
        assert abs(again["metrics"][name]["mean"] - figure["mean"]) <= max(figure["std"], 1e-3), name


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_a_shipped_run_draws_what_it_drew_when_shipped(name: str) -> None:
    figures = tool.sample_figures(difflab.load(tool.PRETRAINED / name))
    for key in figures:
        np.testing.assert_allclose(figures[key], RECORDED[name][key], rtol=1e-3, atol=1e-4)
