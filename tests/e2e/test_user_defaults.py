"""Right by default on a user's own data: labels mean conditioning, quiet when asked, hooks for people who extend.

Callbacks hear every step and checkpoint and can stop a run; `Run.sample` takes a generator or the starting noise;
every option is documented once, from one source.
"""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
import torch

import difflab
from difflab.config import OPTION_HELP, TrainConfig
from tests.helpers import TINY

SMALL = {k: v for k, v in TINY.items() if k not in ("device",)} | {"steps": 12}
DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_labels_given_with_an_array_make_a_conditional_run(capsys: pytest.CaptureFixture[str]) -> None:
    x = np.random.default_rng(0).normal(size=(120, 2))
    y = np.array(["north", "south", "east"])[np.arange(120) % 3]
    run = difflab.train(x, labels=y, **SMALL)
    assert run.config.conditional and run.class_names == ["east", "north", "south"]
    assert "conditional on 3 classes (east, north, south)" in capsys.readouterr().err
    with pytest.raises(difflab.UserError, match="labels were given with conditional=False"):
        difflab.train(x, labels=y, conditional=False, **SMALL)


def test_progress_false_is_silent(capsys: pytest.CaptureFixture[str]) -> None:
    run = difflab.train("moons", progress=False, **SMALL)
    run.sample(10, progress=False)
    run.evaluate(n=50, draws=1, progress=False)
    assert capsys.readouterr().err == ""


def test_callbacks_hear_steps_and_checkpoints_and_can_stop(tmp_path: Path) -> None:
    events: list[difflab.Event] = []

    def listen(event: difflab.Event) -> bool:
        events.append(event)
        return event.kind == "step" and event.step == 7

    run = difflab.train("moons", tmp_path / "run", progress=False, callbacks=[listen], **SMALL)
    assert run.step == 7 and difflab.load(tmp_path / "run").step == 7  # stopped there, with a checkpoint
    steps = [e for e in events if e.kind == "step"]
    assert [e.step for e in steps] == list(range(1, 8)) and all(np.isfinite(e.loss) for e in steps)
    assert [e.step for e in events if e.kind == "checkpoint"] == [5, 7]
    assert run.train(progress=False).step == 12  # and continues where it stopped


def test_snapshots_reach_callbacks_and_bad_callbacks_are_refused() -> None:
    seen = []
    run = difflab.train(
        "moons", progress=False, sample_every=4, callbacks=[lambda e: seen.append(e) if e.kind == "snapshot" else None],
        **SMALL,
    )  # fmt: skip
    assert run.step == 12 and [e.step for e in seen] == [4, 8, 12] and seen[0].samples.shape == (1000, 2)
    for bad in (print, "stop", [1]):
        with pytest.raises(difflab.UserError, match="callback"):
            difflab.train("moons", progress=False, callbacks=bad, **SMALL)


def test_sample_takes_a_generator_or_the_starting_noise() -> None:
    run = difflab.train("moons", progress=False, **SMALL)
    a = run.sample(50, generator=torch.Generator().manual_seed(3), progress=False)
    b = run.sample(50, generator=torch.Generator().manual_seed(3), progress=False)
    assert np.array_equal(a, b) and not np.array_equal(a, run.sample(50, seed=4, progress=False))
    noise = torch.randn(50, 2, generator=torch.Generator().manual_seed(5))
    c = run.sample(50, noise=noise, sampler="ddim", steps=5, progress=False)
    d = run.sample(50, noise=noise.numpy(), sampler="ddim", steps=5, seed=99, progress=False)
    assert np.array_equal(c, d)  # deterministic DDIM from the same x_T: the seed no longer matters
    with pytest.raises(difflab.UserError, match=r"noise must have shape \(50, 2\)"):
        run.sample(50, noise=torch.zeros(49, 2), progress=False)
    with pytest.raises(difflab.UserError, match=r"generator must be a torch\.Generator"):
        run.sample(50, generator=5, progress=False)


def test_every_option_is_documented_once_for_help_cli_and_docs() -> None:
    names = [f.name for f in fields(TrainConfig)]
    assert sorted(OPTION_HELP) == sorted(names)
    docs = DOCS.read_text()
    for name in names:
        assert f"| `{name}` |" in docs and OPTION_HELP[name] in docs, name
        assert f"{name} = {getattr(TrainConfig(), name)!r}: {OPTION_HELP[name]}" in (TrainConfig.__doc__ or "")
    assert "precision" in docs and "compile" in docs


def test_the_report_opens_with_the_verdict(tmp_path: Path) -> None:
    run = difflab.train("moons", tmp_path / "run", progress=False, **SMALL)
    result = run.evaluate(n=200, draws=2, progress=False)
    assert result.verdict.startswith("verdict: ") and result.summary().splitlines()[0] == result.verdict
    page = run.report(figures=False).read_text()
    body = page[page.index("<h2>Evaluation</h2>") :]
    assert re.search(r'<p class="verdict">verdict: ', body)
    assert body.index("ratio") < body.index("distance") < body.index("<h2>Training</h2>")  # the headline first
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["verdict"] == result.verdict
