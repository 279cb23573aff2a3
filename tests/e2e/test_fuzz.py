"""Property-based tests that keep the contract: any value for any option ends in a result or in one clear error.

Through the CLI: exit 0 with finite output, or exit 2 with one error line and no traceback. Through the API:
a finite array, or a `difflab.UserError` of one line. Seeded (derandomized) and bounded, so they run in seconds
and fail the same way twice.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import difflab
from difflab.cli import main
from tests.helpers import TINY, cli_args, error_line

FUZZ = settings(
    max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

#: Anything a user might type or pass: numbers of every size and sign, non-finite floats, words, containers.
ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.lists(st.integers(-3, 3), max_size=3),
    st.sampled_from(["ddim", "dpmpp_2m", "trailing", "clip", "cuda", "1e3", "-0", "0x10", "  5 ", "nan"]),
)
#: What a command-line argument can be: text only.
TYPED = st.one_of(
    st.integers(-(10**20), 10**20).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6),
    st.sampled_from(["ddim", "heun", "karras", "dynamic", "small", "learned", "1e3", "-1", "0", "3"]),
)
#: Cheap enough to try any value of: each bounds the work, so a valid value still runs in well under a second.
SAMPLE_OPTIONS = ["--sampler", "--steps", "--spacing", "--eta", "--variance", "--guidance", "--clip", "--seed"]
SIZES = st.one_of(st.integers(-5, 300), st.sampled_from([0, 10**12, 2**70]))
SAMPLING = ["sampler", "steps", "spacing", "guidance", "clip", "eta", "variance", "chunk_size", "seed", "label"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz") / "run"
    assert main(["train", "--out", str(folder), *cli_args(**TINY, steps=6)]) == 0
    return folder


@pytest.fixture(scope="module")
def run(run_dir: Path) -> difflab.Run:
    return difflab.load(run_dir)


def outcome(argv: list[str], capsys: pytest.CaptureFixture[str]) -> int:
    """The exit code of the command; a failure must be exit 2 with one error line, never a traceback."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:  # argparse refuses a malformed value itself
        code = int(e.code or 0)
    if code != 0:
        assert code == 2, argv
        error_line(capsys.readouterr().err)
    return code


@FUZZ
@given(option=st.sampled_from(SAMPLE_OPTIONS), value=TYPED, n=SIZES.map(str))
def test_sample_takes_any_option_value(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, n: str
) -> None:
    out = tmp_path / "s.npy"
    if outcome(["sample", str(run_dir), "--n", n, "--out", str(out), option, value], capsys) == 0:
        samples = np.load(out)
        assert samples.shape == (int(n), 2) and np.isfinite(samples).all()


@FUZZ
@given(option=st.sampled_from(["--lr", "--ema-decay", "--p-uncond", "--min-snr-gamma", "--grad-clip", "--seed",
                               "--schedule", "--target", "--weighting", "--loss", "--clip", "--lr-warmup",
                               "--time-embedding", "--labelled"]), value=TYPED)  # fmt: skip
def test_train_takes_any_option_value(
    tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    out = tmp_path_factory.mktemp("train") / "run"
    if outcome(["train", "--out", str(out), *cli_args(**TINY, steps=2), option, value], capsys) == 0:
        assert difflab.load(out).step == 2


@FUZZ
@given(n=st.one_of(SIZES, ANYTHING), name=st.sampled_from(SAMPLING), value=ANYTHING)
def test_run_sample_takes_any_argument(run: difflab.Run, n: Any, name: str, value: Any) -> None:
    try:
        samples = run.sample(n, progress=False, **{name: value})
    except difflab.UserError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert samples.ndim == 2 and np.isfinite(samples).all()


@FUZZ
@given(name=st.sampled_from(["steps", "lr", "seed", "target", "schedule", "ema_decay", "p_uncond", "clip"]),
       value=ANYTHING, data=st.sampled_from(["moons", "nowhere.csv", None, 3, b"moons"]))  # fmt: skip
def test_train_takes_any_argument(name: str, value: Any, data: Any) -> None:
    options = {**{k: v for k, v in TINY.items() if k != "checkpoint_every"}, "steps": 2, name: value}
    if name == "steps" and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        options["steps"] = max(min(int(value), 3), -3)  # any sign, but a valid one stays short
    try:
        trained = difflab.train(data, progress=False, **options)
    except difflab.UserError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert np.isfinite(trained.sample(20, progress=False)).all()
