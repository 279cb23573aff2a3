"""What clusters do to training: several nodes meeting at a rendezvous, and a worker killed mid-run.

Both run `difflab train` under torchrun exactly as docs/distributed.md shows: two "nodes" of one process each
on this machine (c10d rendezvous on localhost), and two processes with `--max-restarts 1` where one worker is
SIGKILLed after the first checkpoint; torchrun restarts both, they continue from that checkpoint, and the run
ends with the weights of an uninterrupted one, bit for bit.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from difflab.run import latest_checkpoint_dir
from tests.helpers import TINY, assert_identical, cli_args, env, final_state

ARGS = cli_args(**{**TINY, "checkpoint_every": 50, "log_every": 10}, steps=300)
LAUNCH = [sys.executable, "-m", "torch.distributed.run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def standalone(run: Path, *extra: str) -> subprocess.Popen[str]:
    cmd = [*LAUNCH, "--standalone", "--nproc_per_node=2", *extra, "-m", "difflab", "train", "--out", str(run), *ARGS]
    return subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("dist") / "whole"
    proc = standalone(run)
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return run


def test_two_nodes_meet_at_a_c10d_rendezvous_and_train_as_one(uninterrupted: Path, tmp_path: Path) -> None:
    run, port = tmp_path / "nodes", free_port()
    rendezvous = ["--nnodes=2", "--nproc_per_node=1", "--rdzv_backend=c10d", f"--rdzv_endpoint=localhost:{port}"]
    cmd = [*LAUNCH, *rendezvous, "--rdzv_id=nodes", "-m", "difflab", "train", "--out", str(run), *ARGS]
    nodes = [subprocess.Popen(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    logs = [node.communicate(timeout=300) for node in nodes]
    assert all(node.returncode == 0 for node in nodes), logs
    assert sum(out.count("trained moons to step 300") for out, _ in logs) == 1  # only global rank 0 reports
    # Same global ranks, data shares and seeds as two processes on one node: the same weights.
    assert_identical(final_state(run), final_state(uninterrupted))


def _worker_pid(marker: str, rank: int) -> int | None:
    """The process torchrun started as `rank` (found by an environment marker this test set)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        wanted = [f"DIFFLAB_TEST_MARK={marker}".encode(), f"RANK={rank}".encode(), b"TORCHELASTIC_RESTART_COUNT=0"]
        if all(entry in environ for entry in wanted):
            return int(proc.name)
    return None


def test_a_killed_worker_is_restarted_and_the_run_ends_as_if_never_interrupted(
    uninterrupted: Path, tmp_path: Path
) -> None:
    run, marker = tmp_path / "restarted", uuid.uuid4().hex
    cmd = [*LAUNCH, "--standalone", "--nproc_per_node=2", "--max-restarts=1", "-m", "difflab", "train"]
    proc = subprocess.Popen(
        [*cmd, "--out", str(run), *ARGS],
        env={**env(), "DIFFLAB_TEST_MARK": marker},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while latest_checkpoint_dir(run) is None:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.01)
    pid = _worker_pid(marker, 1)
    assert pid is not None
    subprocess.run(["kill", "-KILL", str(pid)], check=True)
    _out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert "resuming" in err and "from step" in err  # the restarted workers continued from the checkpoint
    assert_identical(final_state(run), final_state(uninterrupted))
