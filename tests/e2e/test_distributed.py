"""`difflab train` under torchrun with 2 CPU processes (gloo): ranks stay identical and match data parallelism."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from difflab.checkpoint import load_weights
from difflab.distributed import World
from difflab.run import read_metrics
from difflab.trainer import Trainer
from tests.helpers import TINY, assert_identical, cli_args, env, final_state, tiny_trainer

STEPS = 12
WORKER = Path(__file__).with_name("ddp_worker.py")


@dataclass(frozen=True)
class SimulatedRank(World):
    """One rank's view (data share, seeds) inside a single process, with no process group behind it."""

    @property
    def distributed(self) -> bool:
        return False


def data_parallel_expectation(tmp_path: Path, schedule: str) -> tuple[Trainer, list[float]]:
    """Two ranks simulated in one process: each computes its loss and gradients, the gradients are averaged.

    The same path for every objective: the learned schedule's VDM bound sets its gradients itself, and they
    are averaged exactly as the denoising loss's.
    """
    ranks = [
        tiny_trainer(tmp_path / f"sim{r}", SimulatedRank(rank=r, size=2), steps=STEPS, schedule=schedule)
        for r in range(2)
    ]
    losses = []
    for _ in range(STEPS):
        step_losses = []
        for t in ranks:
            t.optimizer.zero_grad(set_to_none=True)
            x0, cond = t.batch()
            loss = t.objective(t.train_denoiser, x0, cond, generator=t.generator)
            loss.backward()
            step_losses.append(loss.value.item())
        for params in zip(*(t.model.parameters() for t in ranks), strict=True):
            mean = (params[0].grad + params[1].grad) / 2
            for p in params:
                p.grad = mean.clone()
        for t in ranks:
            t.update()
        losses.append(sum(step_losses) / 2)
    return ranks[0], losses


@pytest.mark.parametrize("schedule", ["cosine", "learned"])
def test_two_processes_stay_identical_and_match_data_parallel_training(tmp_path: Path, schedule: str) -> None:
    run, dump = tmp_path / "run", tmp_path / "dump"
    dump.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER)]
    proc = subprocess.run(
        [*cmd, "train", "--out", str(run), *cli_args(**TINY, steps=STEPS, schedule=schedule)],
        env={**env(), "DUMP_DIR": str(dump)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("trained moons to step 12") == 1  # only rank 0 reports
    rank0, rank1 = (load_weights(dump / f"rank{r}.safetensors") for r in range(2))
    assert_identical(rank0, rank1)  # model and EMA

    saved = final_state(run)
    assert len(saved["state"]["rng"]) == 2  # both ranks' random streams are in the checkpoint
    assert not torch.equal(saved["state"]["rng"][0]["generator"], saved["state"]["rng"][1]["generator"])
    expected, losses = data_parallel_expectation(tmp_path, schedule)
    for name, value in expected.model.state_dict().items():
        torch.testing.assert_close(saved["model"][name], value, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(rank0[f"model.{name}"], value, rtol=1e-5, atol=1e-6)
    for name, value in expected.ema.state_dict().items():
        torch.testing.assert_close(saved["ema"][name], value, rtol=1e-5, atol=1e-6)
    logged = read_metrics(run)
    assert [row["step"] for row in logged] == [4, 8, 12]
    for row in logged:  # losses are averaged over both ranks before logging
        assert abs(row["loss"] - sum(losses[row["step"] - 4 : row["step"]]) / 4) < 1e-5 * max(1.0, abs(row["loss"]))
