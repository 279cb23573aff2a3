"""`difflab compare RUN...`: the options that differ between runs, next to their evaluation figures with spread.

An ablation ("how the default was chosen") becomes one command: train the variants, `difflab evaluate` each
(or pass `evaluate=True`), then compare them. Figures come from each run's eval.json.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from difflab.checkpoint import atomic_write_text
from difflab.config import RESUMABLE_CHANGES, STUDENT_OPTIONS, TrainConfig
from difflab.errors import UserError, setting
from difflab.evaluation import EVAL, mean_and_spread
from difflab.limits import check_flag, check_path
from difflab.run import read_run_record

#: Options that say how a run was executed, not what was trained: never a difference worth a column.
HOW_RUN = RESUMABLE_CHANGES - {"steps"}
NOT_A_STUDENT = dict.fromkeys(STUDENT_OPTIONS, "—")


@dataclass
class Comparison:
    """Runs as rows; the options that differ and the evaluation figures as columns."""

    names: list[str]
    options: list[str]
    values: list[dict[str, Any]]
    figures: list[str]
    results: list[dict[str, str]]

    def rows(self) -> list[list[str]]:
        return [
            [name, *(str(v[o]) for o in self.options), *(r.get(f, "—") for f in self.figures)]
            for name, v, r in zip(self.names, self.values, self.results, strict=True)
        ]

    @property
    def header(self) -> list[str]:
        return ["run", *self.options, *(f if f == "evaluated" else f"{f} (mean ± std)" for f in self.figures)]

    def table(self) -> str:
        """A Markdown table (readable in a terminal, pastable into a README)."""
        lines = ["| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header)]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows()]
        return "\n".join(lines)

    def html(self) -> str:
        """A self-contained page with the same table."""
        esc = html.escape
        head = "".join(f"<th>{esc(h)}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in self.rows())
        style = "body{font:15px system-ui,sans-serif;margin:2em} td,th{padding:4px 10px;border-bottom:1px solid #ddd}"
        return (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>difflab compare</title>'
            f"<style>{style}</style></head><body><h1>difflab compare</h1><table><tr>{head}</tr>{body}</table>"
            "</body></html>\n"
        )


def _figures(path: Path) -> tuple[list[str], dict[str, str]]:
    """(the headline figures, figure → "mean ± std") from RUN/eval.json; ([], {}) when not evaluated.

    The headline is what the evaluation itself names as such; an eval.json written before it did shows every
    figure that is not a floor.
    """
    file = path / EVAL
    if not file.is_file():
        return [], {}
    try:
        ev = json.loads(file.read_text())
        out = {}
        for name, stat in ev["metrics"].items():
            out[name] = mean_and_spread(stat["mean"], stat.get("std"))
        sampling = ev.get("sampling", {})
        steps = f" {sampling['steps']} steps" if sampling.get("steps") else ""
        out["evaluated"] = f"{sampling.get('sampler', '?')}{steps}, {ev['draws']} × n={ev['n']}"
        headline = ev.get("headline") or [name for name in ev["metrics"] if not name.endswith("floor")]
        return [str(name) for name in headline], out
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{file}: unreadable evaluation ({e})") from None


def compare(runs: list[str | Path], *, evaluate: bool = False, **evaluation: Any) -> Comparison:
    """Compare run directories; with `evaluate`, runs without an eval.json are evaluated first."""
    if isinstance(runs, (str, Path)) or not isinstance(runs, (list, tuple)):
        raise UserError(f"invalid {setting('runs', runs, quoted=True)}; expected a list of run directories")
    if len(runs) < 2:
        raise UserError("compare needs at least two runs")
    paths = [check_path("runs", r) for r in runs]
    evaluate = check_flag("evaluate", evaluate)
    records = [read_run_record(p) for p in paths]
    if evaluate:
        from difflab.api import load

        for p in paths:
            if not (p / EVAL).is_file():
                load(p).evaluate(**evaluation)
    names = [f.name for f in fields(TrainConfig)]
    # a run that is not a student has no teacher, method or calls to show ("—"), rather than their unused defaults
    values = [{**r.cfg.to_dict(), **({} if r.cfg.is_student else NOT_A_STUDENT)} for r in records]
    differ = [n for n in names if n not in HOW_RUN and len({json.dumps(v[n]) for v in values}) > 1]
    headlines_and_figures = [_figures(p) for p in paths]
    shown = list(dict.fromkeys(name for headline, _ in headlines_and_figures for name in headline))
    shown += ["evaluated"] if shown else []
    return Comparison([str(p) for p in paths], differ, values, shown, [f for _, f in headlines_and_figures])


def write_html(comparison: Comparison, out: Path) -> Path:
    if out.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"{out}: the comparison page is written as .html")
    atomic_write_text(out, comparison.html())
    return out
