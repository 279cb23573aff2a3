"""`difflab report RUN`: one self-contained HTML page about a run (figures embedded, nothing fetched).

The page opens with the last evaluation (RUN/eval.json): its one-line verdict, the headline figures with their
spread, then the rest; then training timings and the loss curve, the config (what differs from the defaults
first), the data, every figure in RUN/plots, and the versions that wrote and read the run.
A small script marks the page `data-images-loaded` once every image has decoded, which is what the browser
test checks.
"""

from __future__ import annotations

import base64
import html
import json
import platform
import time
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from difflab.checkpoint import atomic_write_text
from difflab.config import TrainConfig
from difflab.errors import UserError
from difflab.evaluation import EVAL, mean_and_spread
from difflab.version import __version__

if TYPE_CHECKING:
    from difflab.kind import RunView

REPORT = "report.html"
STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.6em 0; } td, th { padding: 3px 10px; border-bottom: 1px solid #eee; }
th { text-align: left; background: #f6f6f6; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.changed td { background: #fff6dd; } .muted { color: #777; } figure { margin: 1em 0; }
p.verdict { font-size: 1.15em; font-weight: 600; }
figure img { max-width: 100%; border: 1px solid #eee; } figcaption { color: #555; font-size: 0.9em; }
code { background: #f3f3f3; padding: 0 3px; }
"""
CHECK_IMAGES = """
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const ok = images.every((im) => im.complete && im.naturalWidth > 0);
  document.body.setAttribute("data-images-loaded", ok ? String(images.length) : "failed");
});
"""


def shown_path(path: Path) -> str:
    """The run's folder as the person who made the report names it: relative to the current directory when it lies
    below it ("runs/demo"), absolute otherwise. A report that is shared shows no more of the machine than that."""
    full = path.resolve()
    return str(full.relative_to(Path.cwd().resolve())) if full.is_relative_to(Path.cwd().resolve()) else str(full)


def _e(value: Any) -> str:
    return html.escape(str(value))


def _table(header: list[str], rows: list[list[Any]], changed: set[int] | None = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = []
    for k, row in enumerate(rows):
        cls = ' class="changed"' if changed and k in changed else ""
        cells = "".join(
            f'<td class="num">{_e(c)}</td>' if isinstance(c, (int, float)) else f"<td>{_e(c)}</td>" for c in row
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def config_rows(cfg: TrainConfig) -> tuple[list[list[Any]], set[int]]:
    """Every option, those that differ from the defaults first (their row numbers are returned too)."""
    defaults = TrainConfig()
    names = [f.name for f in fields(TrainConfig)]
    differ = [n for n in names if getattr(cfg, n) != getattr(defaults, n)]
    same = [n for n in names if n not in differ]
    rows = [[n, getattr(cfg, n), getattr(defaults, n)] for n in differ + same]
    return rows, set(range(len(differ)))


def _image(path: Path, caption: str) -> str:
    kind = "gif" if path.suffix.lower() == ".gif" else "png"
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    image = f'<img alt="{_e(caption)}" src="data:image/{kind};base64,{data}">'
    return f"<figure>{image}<figcaption>{_e(caption)}</figcaption></figure>"


def evaluation_section(run_dir: Path, step: int) -> str:
    """The last evaluation (RUN/eval.json): its verdict and headline figures first, then every figure, or how to
    make one; an evaluation of an earlier step says so."""
    path = run_dir / EVAL
    if not path.is_file():
        return f'<p class="muted">Not evaluated yet: run <code>difflab evaluate {_e(run_dir)}</code>.</p>'
    try:
        ev = json.loads(path.read_text())
        metrics = ev["metrics"]
        headline = [n for n in ev.get("headline") or [] if n in metrics]
        rows = [[n, mean_and_spread(metrics[n]["mean"], metrics[n].get("std")), len(metrics[n]["values"])]
                for n in headline + [n for n in metrics if n not in headline]]  # fmt: skip
        sampling = ev.get("sampling", {})
        what = f"{ev['draws']} draws of n = {ev['n']}, sampler {sampling.get('sampler')}, {sampling.get('steps')} steps"
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        return f'<p class="muted">{_e(path)} is unreadable ({_e(e)}).</p>'
    stale = ev.get("run_step") != step
    note = (
        f" <strong>(step {_e(ev.get('run_step'))}, not the run's step {step}: evaluate again)</strong>" if stale else ""
    )
    verdict = f'<p class="verdict">{_e(ev["verdict"])}</p>' if ev.get("verdict") else ""
    table = _table(["figure", "mean ± std over draws", "draws"], rows, set(range(len(headline))))
    return f"{verdict}<p>{_e(what)}; written {_e(ev.get('written', ''))}{note}.</p>{table}"


def timing_rows(metrics: list[dict[str, Any]]) -> list[list[Any]]:
    """Training time and speed from the log."""
    if not metrics:
        return [["training log", "empty"]]
    last = metrics[-1]
    rates = [r["steps_per_s"] for r in metrics if "steps_per_s" in r]
    rows: list[list[Any]] = [["steps logged", f"{metrics[0]['step']} to {last['step']} ({len(metrics)} rows)"]]
    if "elapsed" in last:
        rows.append(["training time", f"{last['elapsed'] / 60:.1f} min ({last['elapsed']:.0f} s)"])
    if rates:
        rows.append(["steps/s (median of intervals)", f"{float(np.median(rates)):.0f}"])
    if "time" in metrics[0] and "time" in last:
        fmt = "%Y-%m-%d %H:%M:%S"
        rows.append(
            [
                "first / last logged",
                f"{time.strftime(fmt, time.localtime(metrics[0]['time']))} / "
                f"{time.strftime(fmt, time.localtime(last['time']))}",
            ]
        )
    rows.append(["final logged loss", f"{last['loss']:.4f}"])
    return rows


def write_report(run: RunView, *, figures: bool = True, progress: bool | None = None) -> Path:
    """RUN/report.html; makes the figures first (RUN/plots) when there are none yet and `figures` is true."""
    if run.path is None:
        raise UserError("a report is written into the run directory; save the run first (Run.save)")
    plots = run.path / "plots"
    if figures and not [p for p in plots.glob("*.png") if not p.name.startswith("progress")]:
        run.plot(plots, progress=progress)
    raw = json.loads((run.path / "config.json").read_text())
    cfg_rows, changed = config_rows(run.config)
    info = run.info
    source = run.source
    data_rows = [
        ["spec", source.spec],
        ["items", source.n_items],
        ["item shape", list(info.shape)],
        ["columns", ", ".join(info.columns) if info.columns else "unnamed"],
        ["classes", ", ".join(info.class_names) if info.class_names else "none (unconditional)"],
        ["copy kept in the run", "yes" if source.stored else "no (read from the spec, checked by fingerprint)"],
        ["fingerprint (SHA-256)", source.fingerprint[:16] + "…"],
    ]
    versions = [
        ["difflab that trained", raw.get("difflab_version", "?")],
        ["difflab of this report", __version__],
        ["torch", torch.__version__],
        ["python", platform.python_version()],
    ]
    images = sorted(plots.glob("*.png")) + sorted(plots.glob("*.gif"))
    loss = [p for p in images if p.name == "loss.png"]
    others = [p for p in images if p.name != "loss.png"]
    parts = [
        f"<h1>{_e(run.config.data)} — {_e(run.kind.defaults.name)} run, step {run.step}</h1>",
        f'<p class="muted">{_e(shown_path(run.path))}; written {_e(time.strftime("%Y-%m-%d %H:%M"))}</p>',
        "<h2>Evaluation</h2>",
        evaluation_section(run.path, run.step),
        "<h2>Training</h2>",
        _table(["", ""], timing_rows(run.metrics)),
        *(_image(p, "training loss") for p in loss),
        "<h2>Config</h2><p>Options that differ from the defaults are highlighted and listed first.</p>",
        _table(["option", "this run", "default"], cfg_rows, changed),
        "<h2>Data</h2>",
        _table(["", ""], data_rows),
        "<h2>Figures</h2>",
        *(_image(p, p.stem.replace("-", " ")) for p in others),
        "<h2>Versions</h2>",
        _table(["", ""], versions),
    ]
    page = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>difflab report: {_e(run.config.data)}'
        f"</title><style>{STYLE}</style><script>{CHECK_IMAGES}</script></head><body>{''.join(parts)}</body></html>\n"
    )
    out = run.path / REPORT
    atomic_write_text(out, page)
    return out
