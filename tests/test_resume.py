"""A training process killed (SIGKILL) or stopped (SIGTERM) mid-run resumes to bit-identical final weights."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from difflab.run import latest_checkpoint_dir
from train_helpers import TINY, assert_identical, cli_args, difflab, final_state

STEPS = 400
ARGS = cli_args(**{**TINY, "checkpoint_every": 50, "log_every": 7}, steps=STEPS)


def signal_after_first_checkpoint(proc: subprocess.Popen[str], run: Path, sig: signal.Signals) -> None:
    """Send `sig` as soon as `run` holds a checkpoint (the run is then well short of its end)."""
    deadline = time.monotonic() + 120
    while latest_checkpoint_dir(run) is None:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.005)
    proc.send_signal(sig)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One uninterrupted run, one killed and one terminated mid-run, all three at once (one core each)."""
    root = tmp_path_factory.mktemp("resume")
    procs = {name: difflab("train", "--out", str(root / name), *ARGS) for name in ("whole", "killed", "termed")}
    signal_after_first_checkpoint(procs["killed"], root / "killed", signal.SIGKILL)
    signal_after_first_checkpoint(procs["termed"], root / "termed", signal.SIGTERM)
    assert procs["killed"].wait(timeout=120) == -signal.SIGKILL
    _out, err = procs["termed"].communicate(timeout=120)
    assert procs["termed"].returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1].startswith("difflab train: stopped by SIGTERM at step ")
    assert f"continue with: difflab train --resume {root / 'termed'}" in err
    assert procs["whole"].wait(timeout=300) == 0, procs["whole"].communicate()
    return {name: root / name for name in procs}


def resume(*args: str) -> str:
    proc = difflab("train", *args)
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return err


def test_a_killed_run_resumed_by_rerunning_its_command_is_bit_identical(runs: dict[str, Path]) -> None:
    run = runs["killed"]
    step = int(final_state(run)["folder"].removeprefix("step-"))
    assert 0 < step < STEPS
    assert f"resuming {run} from step {step}" in resume("--out", str(run), *ARGS)
    assert_identical(final_state(run), final_state(runs["whole"]))
    assert (run / "metrics.jsonl").read_text() == (runs["whole"] / "metrics.jsonl").read_text()


def test_a_terminated_run_checkpointed_its_last_step_and_resumes_bit_identical(runs: dict[str, Path]) -> None:
    run = runs["termed"]
    step = int(final_state(run)["folder"].removeprefix("step-"))
    assert 0 < step < STEPS and step % 50 != 0  # written on the signal, not by the periodic schedule
    resume("--resume", str(run))
    assert_identical(final_state(run), final_state(runs["whole"]))
