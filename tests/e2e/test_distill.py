"""`difflab distill` end to end: a student is a run like any other (sample, evaluate, plot, export, resume), every
method and path trains, guidance still works, and what cannot be distilled is one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, FlowMatchEulerDiscreteScheduler

import difflab
from difflab.cli import main
from difflab.comparison import compare
from difflab.errors import UserError
from difflab.export import load_network
from difflab.samplers import SAMPLERS
from tests.helpers import error_line

POINTS = {"steps": 80, "hidden": 32, "depth": 1, "timesteps": 50, "n_data": 400, "batch_size": 64, "log_every": 40}
QUICK = ["--train-steps", "60", "--distill-pairs", "300", "--teacher-steps", "8", "--log-every", "20"]
QUICK_API = {"train_steps": 60, "distill_pairs": 300, "teacher_steps": 8, "log_every": 20}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> difflab.Run:
    return difflab.train("moons", tmp_path_factory.mktemp("teacher") / "run", progress=False, **POINTS)


def test_a_student_is_a_run_like_any_other(
    teacher: difflab.Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "student"
    assert main(["distill", str(teacher.path), "--out", str(out), "--steps", "2", *QUICK]) == 0
    assert "trajectory student that samples in 2 model calls: step 60" in capsys.readouterr().out
    student = difflab.load(out)
    assert student.config.teacher == str(teacher.path.absolute()) and student.config.student_steps == 2
    calls: list[dict[str, object]] = []
    student.draw(10, student.resolve(), callback=calls.append)
    assert [c["t"] for c in calls] == [49, 24]  # its two trailing steps, one model call each
    assert main(["sample", str(out), "--n", "50", "--out", str(tmp_path / "s.csv")]) == 0
    assert main(["evaluate", str(out), "--n", "200", "--draws", "1"]) == 0
    assert main(["plot", str(out), "--n", "200"]) == 0
    assert main(["animate", str(out), "--n", "100", "--frames", "2"]) == 0
    assert (out / "eval.json").exists() and (out / "plots" / "denoising.gif").exists()
    table = compare([teacher.path, out]).table().splitlines()
    assert "| teacher | distill_method | student_steps |" in table[0]  # what makes the student, next to the teacher
    assert "| — | — | — |" in table[2] and f"| {teacher.path.absolute()} | trajectory | 2 |" in table[3]
    capsys.readouterr()
    # the same --out again continues the student where it stopped
    longer = ["--train-steps", "90", *QUICK[2:]]
    assert main(["distill", str(teacher.path), "--out", str(out), "--steps", "2", *longer]) == 0
    assert "resuming" in capsys.readouterr().err and difflab.load(out).step == 90


@pytest.mark.parametrize("target", ["v", "flow"])
def test_a_student_round_trips_through_diffusers(target: str, tmp_path: Path) -> None:
    """The export README's scheduler (DDIM on the trailing steps; a flow student's Euler on its sigmas) walks the
    student's own K steps: diffusers' samples equal difflab's from the same noise."""
    run = difflab.train("moons", tmp_path / "teacher", target=target, progress=False, **POINTS)
    student = run.distill(tmp_path / "student", steps=2, progress=False, **QUICK_API)
    folder = student.export(tmp_path / "export")
    readme = (folder / "README.md").read_text()
    net = load_network(folder)
    if target == "flow":
        scheduler = FlowMatchEulerDiscreteScheduler.from_pretrained(str(folder), subfolder="scheduler")
        assert "set_timesteps(sigmas=[1, 0.5])" in readme
        scheduler.set_timesteps(sigmas=[1.0, 0.5])
    else:
        scheduler = DDIMScheduler.from_pretrained(str(folder), subfolder="scheduler")
        assert "DDIMScheduler" in readme and "set_timesteps(2)" in readme
        scheduler.set_timesteps(2)
    assert "distilled to sample in 2 model calls" in readme
    x = torch.randn((200, 2), generator=torch.Generator().manual_seed(0))
    theirs = x.clone()
    with torch.no_grad():
        for t in scheduler.timesteps:
            theirs = scheduler.step(net(theirs, t), t, theirs).prev_sample
    sampling = student.resolve()
    ours = SAMPLERS[sampling.sampler](student.model.denoiser_for(), x, sampling.schedule(student.model))
    torch.testing.assert_close(theirs, ours, rtol=0, atol=2e-5)


@pytest.mark.parametrize("method", ["reflow", "consistency"])
def test_every_method_trains_a_conditional_student_that_guidance_steers(method: str, tmp_path: Path) -> None:
    run = difflab.train("circles_vs_moons", tmp_path / "teacher", conditional=True, progress=False, **POINTS)
    student = run.distill(tmp_path / "student", steps=3, method=method, progress=False, **QUICK_API)
    assert student.resolve().sampler == ("consistency" if method == "consistency" else "ddim")
    x = student.sample(64, label=1, guidance=2.0, progress=False)
    assert x.shape == (64, 2) and np.isfinite(x).all()
    if method == "consistency":
        with pytest.raises(UserError, match="no diffusers scheduler"):
            student.export(tmp_path / "export")


def test_an_image_student_draws_images(tmp_path: Path) -> None:
    options = {"model": "unet", "target": "v", "conditional": True, "steps": 4, "batch_size": 8, "timesteps": 50}
    run = difflab.train("digits", tmp_path / "teacher", progress=False, **options)
    student = run.distill(tmp_path / "student", steps=2, train_steps=3, distill_pairs=12, progress=False)
    images = student.sample(4, label=3, progress=False)
    assert student.resolve().steps == 2 and images.shape == (4, 1, 8, 8) and np.isfinite(images).all()


def test_what_cannot_be_distilled_is_one_line(
    teacher: difflab.Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def refused(args: list[str]) -> str:
        try:
            code = main(["distill", *args, "--out", str(tmp_path / "s"), *QUICK])
        except SystemExit as e:  # argparse's own usage errors
            code = e.code
        assert code == 2
        return error_line(capsys.readouterr().err)

    assert "run directory not found" in refused([str(tmp_path / "nowhere")])
    assert "at least 1" in refused([str(teacher.path), "--steps", "0"])
    assert "invalid choice" in refused([str(teacher.path), "--method", "magic"])
    eps = difflab.train("moons", tmp_path / "eps", target="eps", progress=False, **{**POINTS, "steps": 5})
    assert "distill a run trained with target v, x0 or flow" in refused([str(eps.path)])
    student = teacher.distill(tmp_path / "student", steps=1, progress=False, **{**QUICK_API, "train_steps": 20})
    assert "is a student already" in refused([str(student.path)])
    with pytest.raises(UserError, match="needs the teacher in a run directory"):
        difflab.train("moons", progress=False, **{**POINTS, "steps": 5}).distill(steps=2)
    with pytest.raises(SystemExit, match="2"):
        main(["train", "--data", "moons", "--out", str(tmp_path / "t"), "--teacher", str(teacher.path)])
    assert "unrecognized arguments: --teacher" in capsys.readouterr().err


def test_a_student_whose_teacher_is_gone_says_so_when_resumed(
    teacher: difflab.Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "teacher"
    shutil.copytree(teacher.path, copy)
    copied = difflab.load(copy)
    out = tmp_path / "student"
    copied.distill(out, steps=2, progress=False, **{**QUICK_API, "train_steps": 20})
    shutil.rmtree(copy)
    assert np.isfinite(difflab.load(out).sample(20, progress=False)).all()  # sampling needs no teacher
    assert main(["train", "--resume", str(out), "--steps", "40"]) == 2
    assert f"cannot read this student's teacher: {copy}: run directory not found" in error_line(capsys.readouterr().err)
