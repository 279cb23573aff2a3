"""A training process killed (SIGKILL) or stopped (SIGTERM) mid-run resumes to bit-identical final weights."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from difflab.run import latest_checkpoint_dir, read_metrics
from tests.helpers import TINY, assert_identical, cli_args, difflab, final_state

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


@dataclass
class Interrupted:
    run: Path
    step: int  # the checkpoint it was stopped with
    resume_log: str = ""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Interrupted]:
    """One uninterrupted run, one killed and one terminated mid-run, then both resumed (processes run at once)."""
    root = tmp_path_factory.mktemp("resume")
    procs = {name: difflab("train", "--out", str(root / name), *ARGS) for name in ("whole", "killed", "termed")}
    signal_after_first_checkpoint(procs["killed"], root / "killed", signal.SIGKILL)
    signal_after_first_checkpoint(procs["termed"], root / "termed", signal.SIGTERM)
    assert procs["killed"].wait(timeout=120) == -signal.SIGKILL
    _out, err = procs["termed"].communicate(timeout=120)
    assert procs["termed"].returncode == 128 + signal.SIGTERM, err
    stopped_at = re.fullmatch(r"difflab train: stopped by SIGTERM at step (\d+); .*", err.strip().splitlines()[-1])
    assert stopped_at, err
    assert f"continue with: difflab train --resume {root / 'termed'}" in err
    assert procs["whole"].wait(timeout=300) == 0, procs["whole"].communicate()
    out = {name: Interrupted(root / name, checkpoint_step(root / name)) for name in procs}
    assert out["termed"].step == int(stopped_at[1])  # the checkpoint was written at the step the signal stopped
    # The killed run resumes by rerunning its own command, the terminated one with --resume.
    resumed = {
        "killed": difflab("train", "--out", str(root / "killed"), *ARGS),
        "termed": difflab("train", "--resume", str(root / "termed")),
    }
    for name, proc in resumed.items():
        _out, out[name].resume_log = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[name].resume_log
    return out


def checkpoint_step(run: Path) -> int:
    return int(final_state(run)["folder"].removeprefix("step-"))


def test_a_killed_run_resumed_by_rerunning_its_command_is_bit_identical(runs: dict[str, Interrupted]) -> None:
    killed = runs["killed"]
    assert 0 < killed.step < STEPS
    assert f"resuming {killed.run} from step {killed.step}" in killed.resume_log
    assert_identical(final_state(killed.run), final_state(runs["whole"].run))
    # The log was appended live: rows past the checkpoint were cut on resume and logged again, once each.
    logs = [[(r["step"], r["loss"]) for r in read_metrics(name.run)] for name in (killed, runs["whole"])]
    assert logs[0] == logs[1] and [step for step, _ in logs[0]] == [*range(7, STEPS, 7), STEPS]


def test_a_terminated_run_checkpointed_its_last_step_and_resumes_bit_identical(runs: dict[str, Interrupted]) -> None:
    termed = runs["termed"]
    assert 0 < termed.step < STEPS
    assert_identical(final_state(termed.run), final_state(runs["whole"].run))
