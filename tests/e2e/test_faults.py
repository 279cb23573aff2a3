"""Faults end in one clear error line and lose nothing: NaN loss, damaged or malicious checkpoints, read-only runs."""

from __future__ import annotations

import json
import math
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from difflab.cli import main
from difflab.distributed import World
from difflab.errors import UserError
from difflab.objectives import DenoisingObjective, Loss
from difflab.run import EMA, MODEL, STATE, latest_checkpoint_dir, read_checkpoint
from tests.helpers import TINY, assert_identical, cli_args, error_line, final_state, tiny_trainer

ARGS = cli_args(**TINY, steps=12)


def train(run: Path, *extra: str) -> int:
    return main(["train", "--out", str(run), *ARGS, *extra])


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    return error_line(capsys.readouterr().err)


@pytest.fixture
def trained(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    assert train(run) == 0
    return run


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = DenoisingObjective.__call__
    calls = {"n": 0}

    def nan_at_step_8(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        loss = real(self, *args, **kwargs)
        return Loss(loss.value * math.nan, loss.backward) if calls["n"] == 8 else loss

    monkeypatch.setattr(DenoisingObjective, "__call__", nan_at_step_8)
    run = tmp_path / "run"
    capsys.readouterr()
    assert train(run) == 2
    assert "loss became nan at step 8; the last good checkpoint (step 5) is untouched" in one_error_line(capsys)
    assert final_state(run)["folder"] == "step-000000005"
    assert [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [4]

    monkeypatch.setattr(DenoisingObjective, "__call__", real)  # the cause is fixed: rerunning resumes from step 5
    assert train(run) == 0
    assert train(tmp_path / "clean") == 0
    assert_identical(final_state(run), final_state(tmp_path / "clean"))


@pytest.mark.parametrize(("name", "message"), [(EMA, "corrupt or foreign weights"), (STATE, "corrupt or truncated")])
def test_a_truncated_checkpoint_is_a_clear_error(
    trained: Path, capsys: pytest.CaptureFixture[str], name: str, message: str
) -> None:
    path = latest_checkpoint_dir(trained) / name  # type: ignore[operator]
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    capsys.readouterr()
    assert main(["train", "--resume", str(trained), "--steps", "20"]) == 2
    assert message in one_error_line(capsys)
    if name == EMA:
        assert main(["sample", str(trained), "--n", "5", "--out", str(trained / "s.npy")]) == 2
        assert message in one_error_line(capsys)


class RunsCode:
    """A pickle payload that would create a file if it were ever unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_that_would_run_code_is_refused(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The training state is the one file read with torch.load, so the one place a planted pickle could run.
    (The weights are safetensors, which never unpickles: planting one there could not fail for this reason.)"""
    marker = tmp_path / "PWNED"
    torch.save({"step": RunsCode(marker)}, latest_checkpoint_dir(trained) / STATE)  # type: ignore[operator]
    capsys.readouterr()
    assert main(["train", "--resume", str(trained), "--steps", "20"]) == 2
    assert "refused to load" in one_error_line(capsys)
    assert not marker.exists()


def test_foreign_weights_and_a_foreign_world_size_are_named(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = latest_checkpoint_dir(trained)
    assert folder is not None
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(folder / MODEL))
    with pytest.raises(UserError, match="foreign weights file"):
        read_checkpoint(trained)
    run2 = trained.parent / "run2"
    assert train(run2) == 0
    ckpt = read_checkpoint(run2)
    assert ckpt is not None
    two = tiny_trainer(run2, steps=12)
    two.world = World(rank=0, size=2)
    with pytest.raises(UserError, match=r"written by 1 process\(es\); resume it with the same number"):
        two.load(ckpt)


def test_conflicting_config_for_an_existing_run_is_refused(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = final_state(trained)
    capsys.readouterr()
    assert train(trained, "--hidden", "32") == 2
    assert "already holds a run with another config (hidden: 16 in the run, 32 now)" in one_error_line(capsys)
    assert main(["train", "--resume", str(trained), "--lr", "0.1"]) == 2
    assert "only --checkpoint-every, --compile, --device, --log-every, --sample-every, --steps, --tensorboard, " in (
        one_error_line(capsys)
    )
    assert_identical(final_state(trained), before)


@contextmanager
def read_only(root: Path) -> Iterator[None]:
    """Make a directory tree unwritable; root ignores mode bits, so it gets the immutable flag instead."""
    dirs = [root, *(p for p in root.rglob("*") if p.is_dir())]
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", *map(str, dirs)], check=True)
    else:
        for d in dirs:
            d.chmod(0o555)
    try:
        yield
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", *map(str, dirs)], check=True)
        else:
            for d in dirs:
                d.chmod(0o755)


def test_a_read_only_run_directory_is_one_error_and_nothing_is_lost(
    trained: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = final_state(trained)
    capsys.readouterr()
    with read_only(trained):
        assert main(["train", "--resume", str(trained), "--steps", "20"]) == 2
        err = one_error_line(capsys)
    assert f"cannot write to {trained}" in err and "nothing was changed" in err
    assert_identical(final_state(trained), before)
