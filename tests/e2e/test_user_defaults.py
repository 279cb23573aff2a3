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


def test_progress_false_is_silent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = difflab.train("moons", tmp_path / "run", progress=False, **SMALL)
    run.sample(10, progress=False)
    run.evaluate(n=50, draws=1, progress=False)
    run.train(steps=14, progress=False)  # a resume too
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


def test_data_as_people_have_it_keeps_its_column_names_end_to_end(tmp_path: Path) -> None:
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"east_m": rng.uniform(0, 2000, 300), "north_m": rng.uniform(0, 50, 300), "side": ["west", "east"] * 150}
    )
    run = difflab.train(frame, tmp_path / "run", label_column="side", **SMALL)
    assert run.config.conditional and run.class_names == ["east", "west"] and run.info.columns == ["east_m", "north_m"]
    assert difflab.load(tmp_path / "run").info.columns == ["east_m", "north_m"]  # kept in config.json
    from difflab.cli import main

    assert main(["sample", str(tmp_path / "run"), "--n", "5", "--out", str(tmp_path / "s.csv")]) == 0
    assert (tmp_path / "s.csv").read_text().splitlines()[0] == "east_m,north_m"
    assert difflab.train(frame["east_m"], **SMALL).info.columns == ["east_m"]  # a Series
    assert difflab.train([[0.0, 1.0], [1.0, 0.5], [2.0, 0.1]] * 10, **SMALL).info.shape == (2,)  # a list of rows
    with pytest.raises(difflab.UserError, match=r"column 'side' holds 'west', not numbers; .*label_column='side'"):
        difflab.train(frame, **SMALL)
    gap = frame.assign(north_m=frame["north_m"].where(frame.index != 7))
    with pytest.raises(difflab.UserError, match=r"non-finite value nan at row 8, column 2 \('north_m'\)"):
        difflab.train(gap, label_column="side", **SMALL)
    with pytest.raises(difflab.UserError) as caught:
        difflab.train(pd.DataFrame({"a": ["x"] * 5000}), **SMALL)
    assert len(str(caught.value)) < 200  # a short repr, never the whole frame


def test_a_csv_names_its_label_column(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from difflab.cli import main

    rows = ["x_m,y_m,species"] + [f"{k * 10.0},{(k % 7) * 3.0},{'west' if k % 2 else 'east'}" for k in range(60)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    args = ["train", "--data", str(tmp_path / "d.csv"), "--steps", "3", "--hidden", "16", "--out"]
    assert main([*args, str(tmp_path / "a")]) == 2
    assert (
        "column 3 ('species'): 'east' is not a number; if it holds class labels, name it: --label-column 'species'"
        in (capsys.readouterr().err)
    )
    assert main([*args, str(tmp_path / "b"), "--label-column", "species", "--conditional"]) == 0
    run = difflab.load(tmp_path / "b")
    assert run.class_names == ["east", "west"] and run.info.columns == ["x_m", "y_m"]
    assert main([*args, str(tmp_path / "c"), "--label-column", "kind"]) == 2
    assert "no column named 'kind' to take labels from; its columns are x_m, y_m, species" in capsys.readouterr().err


def test_points_space_few_steps_evenly_in_log_snr_and_more_quadratically() -> None:
    """Below `few_step_below` steps the default spacing is the few-step one (log SNR: 10 calls within 1.5× of the full
    chain); from there on the sharper quadratic spacing; a spacing asked for, or an ε run's, wins over both."""
    import difflab
    from difflab.points.defaults import POINTS

    run = difflab.train("moons", steps=5, hidden=16, depth=1, timesteps=50, n_data=200, batch_size=32, progress=False)
    below, at = POINTS.sampling.few_step_below - 1, POINTS.sampling.few_step_below
    assert run.resolve(steps=below).spacing == POINTS.sampling.few_step_spacing == "logsnr"
    assert run.resolve(steps=at).spacing == run.resolve().spacing == POINTS.sampling.spacing == "quadratic"
    assert run.resolve(steps=below, spacing="trailing").spacing == "trailing"
    eps = difflab.train("moons", target="eps", steps=5, hidden=16, depth=1, timesteps=50, n_data=200, progress=False)
    assert eps.resolve(steps=below).spacing == "quadratic"
