"""Run the tutorial notebooks in full mode and store their outputs; ship the runs they train.

    python tools/notebooks.py execute notebooks/*.ipynb    # make notebooks: outputs stored in each notebook
    python tools/notebooks.py train notebooks/*.ipynb      # make notebook-runs: train afresh, then ship the runs

`execute` runs each notebook top to bottom in its own folder (full budgets; the shipped runs under
notebooks/pretrained/ load instead of training) and writes it back with its outputs and, in its metadata, the hash
of its code cells: tests/e2e/test_notebooks.py fails when code changed after the outputs were stored.

`train` moves notebooks/pretrained/ aside, executes the notebooks (which then train into
notebooks/notebook-runs/full/), and ships every run found there into notebooks/pretrained/: its config, its
loss log and the EMA weights of its last checkpoint (what sampling reads; no optimizer state). Each shipped
run's samples at seed 0 are recorded in notebooks/pretrained/recorded.json, which the tests compare with.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

import difflab
from difflab.checkpoint import LATEST
from difflab.run import CHECKPOINTS, CONFIG, EMA, METRICS, latest_checkpoint_dir

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PRETRAINED = NOTEBOOKS / "pretrained"
TRAINED = NOTEBOOKS / "notebook-runs" / "full"
RECORDED = PRETRAINED / "recorded.json"
#: Samples drawn per shipped run for its record: points are cheap, images cost a U-Net chain each.
RECORD_SAMPLES = {"points": 512, "images": 2}


def code_hash(notebook: nbformat.NotebookNode) -> str:
    """The hash of a notebook's code cells: what its stored outputs were computed from."""
    code = "\n\0".join("".join(c.source) for c in notebook.cells if c.cell_type == "code")
    return hashlib.sha256(code.encode()).hexdigest()


def show_gifs_everywhere(notebook: nbformat.NotebookNode) -> None:
    """Give each GIF output an HTML <img> of itself too: nbconvert (and so the docs site) renders no image/gif
    output, and every notebook front end renders HTML."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            gif = output.get("data", {}).get("image/gif")
            if gif:
                output["data"]["text/html"] = f'<img src="data:image/gif;base64,{"".join(gif).strip()}"/>'


def execute(path: Path) -> float:
    """Run one notebook in full mode in its folder and store it with its outputs; seconds it took."""
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    folder = {"metadata": {"path": path.parent}}  # the notebook's relative paths start next to it
    client = NotebookClient(notebook, timeout=3600, kernel_name="python3", resources=folder, record_timing=False)
    client.execute()
    seconds = time.perf_counter() - start
    show_gifs_everywhere(notebook)
    notebook.metadata["difflab"] = {"mode": "full", "code_sha256": code_hash(notebook)}
    nbformat.write(notebook, path)
    return seconds


def ship(trained: Path, pretrained: Path) -> list[str]:
    """Copy each run's config, loss log and last EMA weights from `trained` into `pretrained`."""
    names = []
    for config in sorted(trained.glob(f"*/{CONFIG}")):
        run = config.parent
        step = latest_checkpoint_dir(run).relative_to(run)  # type: ignore[union-attr]
        target = pretrained / run.name
        (target / step).mkdir(parents=True)
        for name in [Path(METRICS), Path(CHECKPOINTS, LATEST), step / EMA]:
            shutil.copyfile(run / name, target / name)
        record = json.loads(config.read_text())
        teacher = record["config"].get("teacher")
        if teacher:  # a student names its teacher: the shipped one, seen from the notebooks' folder
            record["config"]["teacher"] = f"{pretrained.name}/{Path(teacher).name}"
        (target / CONFIG).write_text(json.dumps(record, indent=2) + "\n")
        names.append(run.name)
    return names


def sample_figures(run: object) -> dict[str, list[float]]:
    """What a shipped run's record holds: its samples at seed 0 with its default sampler, summarized (per
    column for points; per image, over its pixels, for images)."""
    kind = run.kind.defaults.name  # type: ignore[attr-defined]
    x = run.sample(RECORD_SAMPLES[kind], seed=0, progress=False)  # type: ignore[attr-defined]
    flat = x.reshape(len(x), -1)
    axis = 0 if kind == "points" else 1
    return {"mean": flat.mean(axis).tolist(), "std": flat.std(axis).tolist()}


def record(pretrained: Path) -> dict[str, dict[str, list[float]]]:
    """`sample_figures` of every run shipped in `pretrained`."""
    return {c.parent.name: sample_figures(difflab.load(c.parent)) for c in sorted(pretrained.glob(f"*/{CONFIG}"))}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["execute", "train"])
    p.add_argument("notebooks", nargs="+", type=Path)
    args = p.parse_args()
    aside = PRETRAINED.with_name("pretrained.old")
    if args.action == "train":
        shutil.rmtree(aside, ignore_errors=True)
        if PRETRAINED.exists():
            PRETRAINED.rename(aside)
        shutil.rmtree(TRAINED, ignore_errors=True)
    for path in args.notebooks:
        seconds = execute(path.resolve())
        print(f"{path}: {seconds / 60:.1f} min", flush=True)
    if args.action == "train":
        names = ship(TRAINED, PRETRAINED)
        RECORDED.write_text(json.dumps(record(PRETRAINED), indent=1) + "\n")
        shutil.rmtree(aside, ignore_errors=True)
        print(f"shipped {len(names)} runs into {PRETRAINED.relative_to(ROOT)}: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
