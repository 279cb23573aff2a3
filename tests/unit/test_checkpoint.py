"""Checkpoints are committed as a whole, survive a crash at any point of a save, and restore exactly."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from difflab import checkpoint
from difflab.api import load
from difflab.data.order import EpochOrder
from difflab.errors import UserError
from difflab.run import CONFIG, MODEL, latest_checkpoint_dir, read_checkpoint, read_metrics, read_run_record
from difflab.training_step import ema_update
from tests.helpers import assert_identical, crash_at_step_7, final_state, tiny_trainer


def test_commit_switches_latest_and_drops_the_older_checkpoint(tmp_path: Path) -> None:
    root = tmp_path / "ckpts"
    checkpoint.commit_checkpoint(root, 5, {"a": b"five"})
    checkpoint.commit_checkpoint(root, 10, {"a": b"ten"})
    assert checkpoint.latest_checkpoint(root) == root / "step-000000010"
    assert (root / "step-000000010" / "a").read_bytes() == b"ten"
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-000000010"]


@pytest.mark.parametrize("fail_at", range(5))
def test_a_crash_anywhere_in_a_save_keeps_the_previous_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int
) -> None:
    """Fail the 1st/2nd/3rd file write, the folder rename, or the pointer update: step 5 stays the checkpoint."""
    trainer = tiny_trainer(tmp_path, steps=10)
    trainer.begin()
    for _ in range(5):
        trainer.train_step()
    trainer.save()
    before = final_state(tmp_path)
    for _ in range(5):
        trainer.train_step()

    calls = {"n": 0}

    def failing(real):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] == fail_at + 1:
                raise OSError(28, "No space left on device")
            return real(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(checkpoint, "_write_synced", failing(checkpoint._write_synced))
    monkeypatch.setattr(checkpoint.os, "rename", failing(os.rename))
    with pytest.raises(UserError, match=r"step 10 checkpoint .*No space left on device.*step 5 is intact"):
        trainer.save()
    assert_identical(final_state(tmp_path), before)
    leftovers = [p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_an_orphan_folder_from_a_crash_before_the_pointer_switch_is_replaced(tmp_path: Path) -> None:
    root = tmp_path / "ckpts"
    checkpoint.commit_checkpoint(root, 5, {"a": b"five"})
    (root / "step-000000010").mkdir()
    (root / "step-000000010" / "a").write_bytes(b"half")
    assert checkpoint.latest_checkpoint(root) == root / "step-000000005"
    checkpoint.commit_checkpoint(root, 10, {"a": b"ten"})
    assert (root / "step-000000010" / "a").read_bytes() == b"ten"


def test_restore_then_continue_equals_one_uninterrupted_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Crash at step 7 (mid log interval, after the step-5 checkpoint): resuming from step 5 is exact."""
    _, resumed = crash_at_step_7(tmp_path, monkeypatch)
    assert resumed.restore() and resumed.step == 5
    resumed.fit(progress=False)
    assert_identical(final_state(tmp_path / "cut"), final_state(tmp_path / "whole"))
    logs = [[(r["step"], r["loss"]) for r in read_metrics(tmp_path / n)] for n in ("cut", "whole")]
    assert logs[0] == logs[1] and [step for step, _ in logs[0]] == [4, 8, 12]


def test_checkpoint_pieces_are_cross_checked(tmp_path: Path) -> None:
    trainer = tiny_trainer(tmp_path, steps=10)
    trainer.fit(progress=False)
    folder = latest_checkpoint_dir(tmp_path)
    assert folder is not None and read_checkpoint(tmp_path) is not None
    older = tmp_path / "older.safetensors"
    checkpoint.atomic_write_bytes(
        older, checkpoint.weights_bytes(trainer.ema.state_dict(), {"format": "difflab-train-state", "step": "5"})
    )
    os.replace(older, folder / "ema.safetensors")
    with pytest.raises(UserError, match=r"inconsistent checkpoint .*step 5, not 10"):
        read_checkpoint(tmp_path)


def test_sampling_loads_the_ema_weights(tmp_path: Path) -> None:
    trainer = tiny_trainer(tmp_path)
    trainer.fit(progress=False)
    run = load(tmp_path)
    for name, value in trainer.ema.state_dict().items():
        assert torch.equal(run.model.denoiser.model.state_dict()[name], value)
    raw = checkpoint.load_weights(latest_checkpoint_dir(tmp_path) / MODEL)  # type: ignore[operator]
    assert not torch.equal(run.model.denoiser.model.inp.weight, raw["inp.weight"])


def test_ema_warm_up_follows_its_formula() -> None:
    ema, model = torch.nn.Linear(1, 1, bias=False), torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(ema.weight)
    torch.nn.init.ones_(model.weight)
    ema_update(ema, model, decay=0.999, step=0)  # d = min(0.999, 1/10) = 0.1
    assert ema.weight.item() == pytest.approx(0.9)
    ema_update(ema, model, decay=0.5, step=1000)  # d = 0.5 once warmed up
    assert ema.weight.item() == pytest.approx(0.95)


def test_epoch_order_splits_each_epoch_between_ranks_and_resumes(tmp_path: Path) -> None:
    ranks = [EpochOrder(12, seed=3, rank=r, world_size=2) for r in range(2)]
    epoch0 = torch.cat([r.take(6) for r in ranks])
    assert sorted(epoch0.tolist()) == list(range(12))
    first = ranks[0].take(4)  # runs into epoch 1: a new permutation
    assert ranks[0].state_dict() == {"epoch": 1, "offset": 4}
    again = EpochOrder(12, seed=3, rank=0, world_size=2)
    again.load_state_dict({"epoch": 1, "offset": 0})
    assert torch.equal(again.take(4), first)
    assert torch.equal(again.take(5), ranks[0].take(5))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"format_version": 99}, "newer difflab .*run format 99.*upgrade difflab"),
        ({"format_version": 0}, "older run format 0"),
        ({"format": None}, "before run format 2"),
        ({"format_version": 1}, "older run format 1"),
    ],
)
def test_runs_from_other_versions_say_so(tmp_path: Path, change: dict[str, object], message: str) -> None:
    tiny_trainer(tmp_path).begin()
    raw = json.loads((tmp_path / CONFIG).read_text())
    assert raw["difflab_version"] and raw["format_version"] == 2
    (tmp_path / CONFIG).write_text(json.dumps({**raw, **change}))
    with pytest.raises(UserError, match=message):
        read_run_record(tmp_path)
