"""Run the tutorial notebooks in full mode and store their outputs; ship the runs they train.

    python tools/notebooks.py execute notebooks/*.ipynb    # make notebooks: outputs stored in each notebook
    python tools/notebooks.py train notebooks/*.ipynb      # make notebook-runs: train afresh, then ship the runs
    python tools/notebooks.py record                       # record the shipped runs again (no training)

`execute` runs each notebook top to bottom in its own folder (full budgets; the shipped runs under
notebooks/pretrained/ load instead of training) and writes it back with its outputs and, in its metadata, the hash
of its code cells: tests/e2e/test_notebooks.py fails when code changed after the outputs were stored.

`train` moves notebooks/pretrained/ aside, executes the notebooks (which then train into
notebooks/notebook-runs/full/), and ships every run found there into notebooks/pretrained/: its config, its
loss log and the EMA weights of its last checkpoint (what sampling reads; no optimizer state). Each shipped
run's samples and evaluation at seed 0 are recorded in notebooks/pretrained/recorded.json, which the tests compare
with, and listed in notebooks/pretrained/README.md.
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
LISTING = PRETRAINED / "README.md"
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


#: The parts of an evaluation's eval.json form that a record keeps (not when or with which versions it ran).
EVALUATION_KEYS = ("verdict", "headline", "metrics", "sampling")


def evaluation(run: object) -> dict[str, object]:
    """What `difflab.evaluate` says of a shipped run at seed 0 with its kind's defaults, as eval.json has it: the
    verdict, and each figure's mean, spread and draws."""
    e = run.evaluate(seed=0, progress=False, save=False).to_dict()  # type: ignore[attr-defined]
    return {key: e[key] for key in EVALUATION_KEYS}


def record(pretrained: Path) -> dict[str, dict[str, object]]:
    """`sample_figures` and `evaluation` of every run shipped in `pretrained`."""
    records = {}
    for config in sorted(pretrained.glob(f"*/{CONFIG}")):
        run = difflab.load(config.parent)
        records[config.parent.name] = {**sample_figures(run), "evaluation": evaluation(run)}
        print(f"recorded {config.parent.name}", flush=True)
    return records


def _figure(name: str, figures: dict[str, dict[str, float]]) -> str:
    """A headline figure as the listing shows it, e.g. precision 0.982 ± 0.002 (floor 0.997)."""
    digits = 2 if name.endswith("ratio") else 3
    shown = f"{name.replace('_', ' ')} {figures[name]['mean']:.{digits}f} ± {figures[name]['std']:.{digits}f}"
    floor = figures.get(f"{name}_floor")
    return f"{shown} (floor {floor['mean']:.{digits}f})" if floor else shown


def listing(pretrained: Path, records: dict[str, dict[str, object]]) -> str:
    """notebooks/pretrained/README.md: how the runs were made, and one line per run with its evaluation."""
    rows = []
    for name, rec in records.items():
        config = json.loads((pretrained / name / CONFIG).read_text())["config"]
        made = f"target {config['target']}"
        if config.get("teacher"):
            made = f"{config['student_steps']}-call student of `{config['teacher']}`"
        evaluation = rec["evaluation"]  # type: ignore[index]
        shown = ", ".join(_figure(name, evaluation["metrics"]) for name in evaluation["headline"])
        rows.append(f"| `{name}` | {config['data']} | {made} | {config['steps']:,} | {config['seed']} | {shown} |")
    return "\n".join(
        [
            "# Runs the notebooks load",
            "",
            "The notebooks train these runs when asked (`make notebook-runs`, which runs",
            "`python tools/notebooks.py train notebooks/*.ipynb`) and otherwise load them, so full mode takes minutes.",
            "Each folder holds the run's `config.json` (every option, the seed and the data it was trained on), its",
            "loss log and the EMA weights of its last checkpoint (safetensors; no optimizer state, so a shipped run",
            "samples, evaluates and plots but does not resume). `recorded.json` holds each run's samples and",
            "evaluation at seed 0; `tests/e2e/test_notebooks.py` checks that every run still draws them.",
            "",
            "Evaluation: `difflab.load(folder).evaluate(seed=0)` with its kind's defaults, mean ± spread over its",
            "draws (points: energy ratio, where 1 is another draw of the data, and k-NN precision and recall next",
            "to their floors, over all classes; images: conditional accuracy and Fréchet ratio). Many runs are",
            "small (4,000 steps) or weak on purpose: the notebooks compare weightings, targets and budgets, and",
            "some of them lose.",
            "",
            "| run | data | made as | steps | seed | evaluation (seed 0) |",
            "|---|---|---|--:|--:|---|",
            *rows,
            "",
        ]
    )


def write_record(pretrained: Path) -> None:
    """Record every shipped run (recorded.json) and list them (README.md)."""
    records = record(pretrained)
    (pretrained / RECORDED.name).write_text(json.dumps(records, indent=1) + "\n")
    (pretrained / LISTING.name).write_text(listing(pretrained, records))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["execute", "train", "record"])
    p.add_argument("notebooks", nargs="*", type=Path)
    args = p.parse_args()
    if args.action == "record":
        write_record(PRETRAINED)
        return 0
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
        write_record(PRETRAINED)
        shutil.rmtree(aside, ignore_errors=True)
        print(f"shipped {len(names)} runs into {PRETRAINED.relative_to(ROOT)}: {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
