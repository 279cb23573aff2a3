"""What an adversarial user tried, by class: each class is closed by a mechanism, and each mechanism is tested here.

Bad input of any kind ends in one error line and exit code 2 (no traceback), before any work and with nothing
lost: a lock on the run directory, data fingerprints, one validation layer for every numeric option, output
checks before sampling, bounded config files, and checked run directories.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import difflab
from difflab.checkpoint import commit_checkpoint, load_weights_and_metadata, weights_bytes
from difflab.cli import main
from difflab.data.images import read_image_folder
from difflab.run import CONFIG, EMA, METRICS, RunLock, latest_checkpoint_dir
from tests.helpers import TINY, cli_args, env, error_line, final_state

ARGS = cli_args(**TINY, steps=12)


def train(run: Path, *extra: str) -> int:
    return main(["train", "--out", str(run), *ARGS, *extra])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("hardening") / "run"
    assert train(run) == 0
    return run


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes: "nothing lost or changed" is equality of two snapshots."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def fails(argv: list[str], capsys: pytest.CaptureFixture[str], message: str) -> None:
    """The command exits with 2 and one error line containing `message`."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:  # argparse usage errors
        code = e.code
    assert code == 2, argv
    line = error_line(capsys.readouterr().err)
    assert message in line, line


# --- lost or corrupted runs ---


def test_a_second_writer_is_refused_while_the_first_lives(trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(trained)
    holder = RunLock(trained)
    holder.acquire()  # another open file description: flock refuses it even within this process
    try:
        fails(["train", "--resume", str(trained), "--steps", "20"], capsys, "is being trained by another difflab")
        fails(["train", "--out", str(trained), *ARGS], capsys, f"(pid {os.getpid()})")
    finally:
        holder.release()
    assert snapshot(trained) == before


def test_a_lock_left_by_a_killed_holder_does_not_block(trained: Path, tmp_path: Path) -> None:
    code = f"from difflab.run import RunLock; from pathlib import Path; RunLock(Path({str(trained)!r})).acquire(); "
    code += "print('locked', flush=True); import time; time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code], env=env(), stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    copy = tmp_path / "copy"  # resume a copy: the module's run stays as it was for the other tests
    subprocess.run(["cp", "-a", str(trained), str(copy)], check=True)
    RunLock(trained).acquire()  # the kernel released the dead holder's lock
    assert main(["train", "--resume", str(copy), "--steps", "16"]) == 0


def test_resume_without_a_pointer_continues_from_the_last_complete_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    assert train(run, "--steps", "10", "--checkpoint-every", "5") == 0
    (run / "checkpoints" / "latest").unlink()
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--steps", "15"]) == 0
    assert f"resuming {run} from step 10" in capsys.readouterr().err
    assert final_state(run)["folder"] == "step-000000015"
    assert [r["step"] for r in map(json.loads, (run / METRICS).read_text().splitlines())] == [4, 8, 10, 12, 15]


def test_resume_with_nothing_to_resume_is_refused_and_deletes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("mine")
    fails(["train", "--resume", str(empty)], capsys, "not a run directory")
    assert (empty / "notes.txt").read_text() == "mine"


def test_a_checkpoint_commit_deletes_only_the_checkpoints_it_supersedes(tmp_path: Path) -> None:
    root = tmp_path / "checkpoints"
    commit_checkpoint(root, 50, {"a": b"50"})
    (root / "step-000000080").mkdir()  # not superseded by step 60: kept
    (root / "step-000000080" / "a").write_bytes(b"80")
    commit_checkpoint(root, 60, {"a": b"60"})
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-000000060", "step-000000080"]


def test_changed_data_is_not_resumed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data.csv"
    rng = np.random.default_rng(0)
    data.write_text("x,y\n" + "".join(f"{a:.4f},{b:.4f}\n" for a, b in rng.normal(size=(200, 2))))
    run = tmp_path / "run"
    command = ["train", "--data", str(data), "--out", str(run), *ARGS]
    assert main(command) == 0
    before = snapshot(run)
    data.write_text("x,y\n" + "".join(f"{a:.4f},{b:.4f}\n" for a, b in rng.normal(5.0, 2.0, size=(200, 2))))
    fails(command, capsys, "was trained on other data than")
    assert snapshot(run) == before
    config = json.loads((run / CONFIG).read_text())
    assert config["config"]["n_data"] == 200 and config["source"]["n_items"] == 200  # the real row count


def test_a_run_of_point_data_plots_from_anywhere_after_its_file_moved(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("x,y\n" + "".join(f"{a:.4f},{b:.4f}\n" for a, b in np.random.default_rng(1).normal(size=(80, 2))))
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), *ARGS]) == 0
    data.rename(tmp_path / "moved.csv")
    cwd = os.getcwd()
    os.chdir("/")
    try:
        assert main(["plot", str(run), "--n", "40", "--steps", "3"]) == 0
        assert main(["evaluate", str(run), "--n", "20", "--draws", "2", "--steps", "3"]) == 0
    finally:
        os.chdir(cwd)


def test_16_bit_images_are_scaled_by_their_bit_depth(tmp_path: Path) -> None:
    for k, name in enumerate(["a", "b"]):
        (tmp_path / name).mkdir()
        pixels = np.full((8, 8), 257 * (40 + 100 * k), dtype=np.uint16)
        pixels[0, 0] = 65535
        Image.fromarray(pixels).save(tmp_path / name / "one.png")
    data = read_image_folder(tmp_path)
    assert data.images.dtype == np.uint8
    assert data.images[0, 0, 1, 1] == 40 and data.images[1, 0, 1, 1] == 140 and data.images[0, 0, 0, 0] == 255


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--eta", "nan"], "invalid --eta nan; expected a finite number"),
        (["--eta", "inf"], "expected a finite number"),
        (["--eta", "1e300"], "must be in [0, 1]"),
        (["--guidance", "inf"], "expected a finite number"),
        (["--guidance", "nan"], "expected a finite number"),
        (["--guidance", "1e300"], "must be in [0, 100]"),
    ],
)
def test_non_finite_and_huge_sampling_options_are_refused(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    out = tmp_path / "s.npy"
    fails(["sample", str(trained), "--n", "5", "--out", str(out), *flags], capsys, message)
    assert not out.exists()


def test_non_finite_weights_or_scaler_in_a_run_are_refused(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad"
    subprocess.run(["cp", "-a", str(trained), str(bad)], check=True)
    ema = latest_checkpoint_dir(bad) / EMA  # type: ignore[operator]
    weights, meta = load_weights_and_metadata(ema)
    weights["inp.weight"][0, 0] = float("nan")
    ema.write_bytes(weights_bytes(weights, meta))
    fails(["sample", str(bad), "--n", "5", "--out", str(tmp_path / "s.npy")], capsys, "weights hold NaN or inf")
    subprocess.run(["cp", "-a", str(trained / "checkpoints"), str(bad)], check=True)
    config = json.loads((bad / CONFIG).read_text())
    config["data"]["scaler"]["hi"][0] = float("inf")
    (bad / CONFIG).write_text(json.dumps(config))
    fails(["sample", str(bad), "--n", "5", "--out", str(tmp_path / "s.npy")], capsys, "corrupt run config")


def test_non_finite_samples_are_never_written(
    trained: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from difflab import samplers

    default = difflab.load(trained).resolve().sampler
    monkeypatch.setitem(samplers.SAMPLERS, default, lambda fn, x, schedule, **kw: x * float("nan"))
    out = tmp_path / "s.npy"
    fails(["sample", str(trained), "--n", "5", "--out", str(out)], capsys, "sampling produced NaN or inf")
    assert not out.exists()


def test_options_with_resume_are_applied_or_refused(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(trained), str(copy)], check=True)
    fails(["train", "--resume", str(copy), "--out", str(tmp_path / "other")], capsys, "drop --out")
    more = tmp_path / "more.toml"
    more.write_text("steps = 16\n")
    assert main(["train", "--resume", str(copy), "--config", str(more)]) == 0
    assert final_state(copy)["folder"] == "step-000000016"
    other = tmp_path / "other.toml"
    other.write_text("steps = 20\nhidden = 64\n")
    fails(["train", "--resume", str(copy), "--config", str(other)], capsys, "(got hidden)")


def test_a_learned_variance_is_refused_where_none_was_trained(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fails(["train", "--sample-variance", "learned", "--out", str(tmp_path / "r")], capsys, "--learned-variance")
    assert not (tmp_path / "r").exists()
    out = tmp_path / "s.npy"
    fails(["sample", str(trained), "--variance", "learned", "--out", str(out)], capsys, "learned variance")


# --- options without bounds or type checks ---

BAD_OPTIONS = [
    (["train", "--seed", "-1"], "invalid --seed -1; must be from 0 to 4,611,686,018,427,387,904"),
    (["train", "--seed", "100000000000000000000000"], "invalid --seed"),
    (["train", "--fourier-features", "-1"], "invalid --fourier-features -1"),
    (["train", "--lr", "1e300"], "must be in (0, 10]"),
    (["train", "--n-data", "100000000000"], "invalid --n-data"),
    (["train", "--hidden", "100000"], "invalid --hidden"),
    (["train", "--timesteps", "100000000000"], "invalid --timesteps"),
    (["train", "--min-snr-gamma", "0"], "must be in (0, 1e+09]"),
    (["train", "--min-snr-gamma", "-2"], "must be in (0, 1e+09]"),
    (["train", "--labelled", "5"], "--labelled keeps some class labels, so it needs --conditional"),
    (["datasets", "--export", "moons", "x.csv", "--n", "-5"], "invalid --n -5; must be from 1 to 1,000,000,000"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_OPTIONS, ids=[" ".join(a[1:3]) for a, _ in BAD_OPTIONS])
def test_every_numeric_option_is_bounded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    if argv[0] == "train":
        argv = [*argv, "--out", str(tmp_path / "r")]
    fails(argv, capsys, message)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sample", "RUN", "--n", "0", "--out", "OUT/s.npy"], "invalid --n 0; must be from 1 to 1,000,000,000"),
        (["sample", "RUN", "--n", "100000000000", "--out", "OUT/s.npy"], "invalid --n"),
        (["sample", "RUN", "--seed", "-1", "--out", "OUT/s.npy"], "invalid --seed -1"),
        (["animate", "RUN", "--frames", "-3", "--out", "OUT/a.gif"], "invalid --frames -3"),
        (["sample", "RUN", "--chunk-size", "0", "--out", "OUT/s.npy"], "invalid --chunk-size 0"),
        (["sample", "RUN", "--steps", "0", "--out", "OUT/s.npy"], "invalid --steps 0"),
        (["sample", "RUN", "--threads", "-1", "--out", "OUT/s.npy"], "invalid --threads -1"),
    ],
)
def test_sampling_command_numbers_are_bounded(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    argv = [a.replace("RUN", str(trained)).replace("OUT", str(tmp_path)) for a in argv]
    fails(argv, capsys, message)
    assert list(tmp_path.iterdir()) == []


def test_a_config_file_seed_is_bounded_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("seed: -1\n")
    fails(["train", "--config", str(config), "--out", str(tmp_path / "r")], capsys, "invalid --seed -1")


def test_sizes_beyond_the_machine_are_refused_before_allocating(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fails(["train", "--n-data", "900000000", "--out", str(tmp_path / "r")], capsys, "of memory; this machine has")
    fails(["train", "--hidden", "60000", "--out", str(tmp_path / "r")], capsys, "of memory; this machine has")
    assert not (tmp_path / "r").exists()


# --- outputs are checked before the work ---


def test_outputs_are_checked_before_sampling(trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "folder.npy").mkdir()
    sample = ["sample", str(trained), "--n", "5", "--out"]
    fails([*sample, str(tmp_path / "folder.npy")], capsys, "is a directory")
    fails([*sample, str(tmp_path / "a-file" / "s.npy")], capsys, "a-file: is a file, not a folder")
    fails([*sample, str(tmp_path / "s.txt")], capsys, "written as .npy or .csv")
    fails(["animate", str(trained), "--out", str(tmp_path / "a.txt")], capsys, "written as .gif")
    fails(["datasets", "--export", "moons", str(tmp_path / "m.npy")], capsys, "written as .csv")
    assert main([*sample, str(tmp_path / "new" / "deeper" / "s.npy")]) == 0  # missing folders are created


def test_an_unwritable_output_folder_is_one_line(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.e2e.test_faults import read_only

    folder = tmp_path / "ro"
    folder.mkdir()
    with read_only(folder):
        fails(["sample", str(trained), "--n", "5", "--out", str(folder / "s.npy")], capsys, f"cannot write to {folder}")


# --- data ---


def test_bad_data_files_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage\n")
    fails(["train", "--data", str(binary), "--out", str(tmp_path / "r")], capsys, "not a text CSV file")
    huge_field = tmp_path / "field.csv"
    huge_field.write_text("x,y\n" + '"' + "1" * 200_000 + '",2\n3,4\n')
    fails(["train", "--data", str(huge_field), "--out", str(tmp_path / "r")], capsys, "not a readable CSV")
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"\x93NUMPY garbage that is no array at all")
    fails(["train", "--data", str(garbage), "--out", str(tmp_path / "r")], capsys, "garbage.npy")
    capsys.readouterr()
    main(["train", "--data", str(garbage), "--out", str(tmp_path / "r")])
    assert "allow_pickle" not in capsys.readouterr().err
    huge = tmp_path / "huge.csv"
    huge.write_text("x,y\n1e308,0\n-1e308,1\n0,2\n")
    fails(["train", "--data", str(huge), "--out", str(tmp_path / "r")], capsys, "a range float64 cannot hold")
    assert not (tmp_path / "r").exists()


def test_odd_label_strings_are_names_and_odd_classes_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "labels.csv"
    rows = "".join(f"{k * 0.1:.2f},{k * 0.2:.2f},{['--5', '²', '7'][k % 3]}\n" for k in range(60))
    data.write_text("x,y,label\n" + rows)
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--conditional", *ARGS]) == 0
    assert json.loads((run / CONFIG).read_text())["data"]["class_names"] == ["7", "--5", "²"]
    out = str(tmp_path / "s.npy")
    assert main(["sample", str(run), "--n", "3", "--class", "²", "--steps", "2", "--out", out]) == 0
    fails(["sample", str(run), "--n", "3", "--class", "³", "--out", out], capsys, "unknown class '³'")
    fails(["sample", str(run), "--n", "3", "--class=--5x", "--out", out], capsys, "unknown class")


def test_images_with_a_point_model_and_an_empty_image_folder_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "r")
    fails(["train", "--data", "digits", "--model", "mlp", "--conditional", "--out", out], capsys, "--model unet")
    fails(["train", "--data", "images:", "--out", out], capsys, "images: needs a folder")
    assert not (tmp_path / "r").exists()


# --- config files ---


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("latin.yaml", "data: caf\xe9\n".encode("latin-1"), "not UTF-8 text"),
        (
            "bomb.yaml",
            (
                "a: &a [x, x, x, x, x, x, x, x, x]\n"
                + "".join(
                    f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                    for p, c in zip("abcdefg", "bcdefgh", strict=True)
                )
                + "data: *h\n"
            ).encode(),
            "too large or too deeply nested",
        ),
        ("list.yaml", b"data: [1, 2]\n", "invalid --data [1, 2]; expected a"),
        ("number.toml", b"target = 3\n", "invalid --target 3; choose one of"),
    ],
)
def test_bad_config_files_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: bytes, message: str
) -> None:
    config = tmp_path / name
    config.write_bytes(content)
    fails(["train", "--config", str(config), "--out", str(tmp_path / "r")], capsys, message)


# --- corrupt run directories ---


def _damaged(trained: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "damaged"
    subprocess.run(["cp", "-a", str(trained), str(copy)], check=True)
    return copy


def test_damaged_run_directories_are_one_line(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "s.npy")
    run = _damaged(trained, tmp_path)
    latest = run / "checkpoints" / "latest"
    latest.write_bytes(b"\x00\xff\xfe binary")
    fails(["sample", str(run), "--out", out], capsys, "corrupt checkpoint pointer")
    latest.unlink()
    latest.symlink_to("/etc/passwd")
    capsys.readouterr()
    assert main(["sample", str(run), "--out", out]) == 2
    err = capsys.readouterr().err
    assert "symbolic link" in err and "root:" not in err  # the target's bytes are not echoed
    latest.unlink()
    raw = json.loads((run / CONFIG).read_text())
    for change, message in [
        ({"config": {**raw["config"], "steps": 10**400}}, "corrupt run config"),
        ({"data": {**raw["data"], "scaler": {"lo": [0.0], "hi": [1.0]}}}, "corrupt run config"),
        ({"data": {**raw["data"], "shape": [-2]}}, "corrupt run config"),
    ]:
        (run / CONFIG).write_text(json.dumps({**raw, **change}))
        fails(["sample", str(run), "--out", out], capsys, message)
    (run / CONFIG).write_text(json.dumps(raw))
    assert main(["sample", str(run), "--n", "3", "--out", out]) == 0  # the pointer's absence alone is no damage


def test_a_malformed_random_state_is_refused_before_it_touches_anything(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _damaged(trained, tmp_path)
    folder = latest_checkpoint_dir(run)
    assert folder is not None
    state = torch.load(folder / "state.pt", weights_only=True)
    state["rng"][0]["torch"] = torch.zeros(7, dtype=torch.uint8)
    torch.save(state, folder / "state.pt")
    before = snapshot(run)
    rng = torch.get_rng_state()
    fails(["train", "--resume", str(run), "--steps", "20"], capsys, "checkpoint does not match this config")
    assert torch.equal(torch.get_rng_state(), rng)
    assert snapshot(run) == before


def test_a_damaged_metrics_log_costs_only_the_loss_figure(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _damaged(trained, tmp_path)
    (run / METRICS).write_text('{"step": 4, "loss": 0.5}\nnot json\n')
    figures = tmp_path / "figures"
    assert main(["plot", str(run), "--out", str(figures), "--n", "30", "--steps", "3"]) == 0
    assert "line 2 is not JSON" in capsys.readouterr().err
    assert (figures / "samples.png").exists() and not (figures / "loss.png").exists()


# --- smaller promises ---


def test_outputs_get_the_users_normal_permissions(trained: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    for path in [trained / CONFIG, trained / METRICS, trained / "checkpoints" / "latest"]:
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path
    folder = latest_checkpoint_dir(trained)
    assert folder is not None and folder.stat().st_mode & 0o777 == 0o777 & ~umask
    assert (folder / EMA).stat().st_mode & 0o777 == 0o666 & ~umask


def test_temporary_files_left_by_a_kill_are_cleaned(trained: Path, tmp_path: Path) -> None:
    run = _damaged(trained, tmp_path)
    leftovers = [run / ".metrics.jsonl.abc123.tmp", run / "checkpoints" / ".latest.xyz.tmp"]
    for path in leftovers:
        path.write_text("half")
    (run / "checkpoints" / ".step-000000099.q.tmp").mkdir()
    assert main(["train", "--resume", str(run), "--steps", "13"]) == 0
    assert not [p for p in run.rglob("*.tmp")]


#: What the `difflab` command runs (`from difflab.console import main; sys.exit(main())`), saying "ready" once
#: the interpreter is up and the entry point imported: a Ctrl-C during the interpreter's own bootstrap, before
#: any of difflab's code runs, is Python's to report, and on a loaded machine a fixed delay from launch lands there.
LAUNCH_WHEN_UP = (
    "import sys; from difflab.console import main; sys.stderr.write('ready\\n'); sys.stderr.flush(); "
    "sys.argv[0] = 'difflab'; sys.exit(main())"
)


@pytest.mark.parametrize("inherited", [signal.SIG_DFL, signal.SIG_IGN], ids=["foreground", "background"])
@pytest.mark.parametrize("delay", [0.05, 0.4, 1.5])
def test_ctrl_c_at_any_moment_of_start_up_is_one_line(tmp_path: Path, delay: float, inherited: int) -> None:
    """`background`: a shell starts a background job with SIGINT ignored; `kill -INT` must still stop it cleanly
    (it once vanished between the CLI's import and the trainer's handler, and training went on)."""
    args = ["train", "--out", str(tmp_path / "r"), *cli_args(**{**TINY, "steps": 100_000})]
    proc = subprocess.Popen(
        [sys.executable, "-c", LAUNCH_WHEN_UP, *args],
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, inherited),
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()
    if first != "ready\n":  # say what came instead, whole, rather than a bare inequality
        proc.kill()
        pytest.fail(f"start-up wrote {first!r} before 'ready'; then: {proc.communicate(timeout=60)[1]}")
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err


def test_a_start_up_interrupt_is_taken_by_the_trainer_once(tmp_path: Path) -> None:
    """A Ctrl-C recorded during start-up stops training at its first step, and the trainer takes it: the console's
    retry timer must not deliver it again as a KeyboardInterrupt into the clean stop (a traceback, killed by SIGINT
    instead of exit 130, as a fresh-clone run of the test above once was)."""
    from difflab import interrupts
    from difflab.trainer import Interrupted

    interrupts.record(signal.SIGINT)
    try:
        with pytest.raises(Interrupted, match="SIGINT at step 1"):
            difflab.train("moons", tmp_path / "r", progress=False, **{**TINY, "steps": 1000})
        assert interrupts.pending() is None
    finally:
        interrupts.take()
