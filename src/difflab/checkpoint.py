"""Atomic, code-free persistence: safetensors for weights, weights-only torch files for state.

Every write goes to a temporary file in the same directory, is flushed and fsync'ed, then renamed
over the target, so a crash or a full disk leaves either the old file or the new one, never a
mix. A training checkpoint (several files) is committed as a whole by `commit_checkpoint`.
Loading never unpickles arbitrary objects.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from difflab.errors import UserError

LATEST = "latest"
_STEP_DIR = re.compile(r"step-(\d{9})")


def _umask() -> int:
    """The process umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _normal_mode(path: Path, *, folder: bool) -> None:
    """Give a file or folder from mkstemp/mkdtemp (0600/0700) the permissions a plain open/mkdir would."""
    os.chmod(path, (0o777 if folder else 0o666) & ~_umask())


def _write_synced(path: Path, payload: bytes) -> None:
    """Write and fsync one file (its content is on disk before anything points at it)."""
    with open(path, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable."""
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write bytes to `path` via temp file + fsync + rename (POSIX-atomic replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        _write_synced(Path(tmp), payload)
        _normal_mode(Path(tmp), folder=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """Atomically write UTF-8 text."""
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj: Any) -> None:
    """Atomically write pretty JSON."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def weights_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """A flat dict of tensors (plus string metadata) as safetensors bytes: data only, no code."""
    clean = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    return st_save(clean, metadata=metadata)


def save_weights(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Save a flat dict of tensors as safetensors, atomically."""
    atomic_write_bytes(path, weights_bytes(tensors))


def load_weights_and_metadata(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Load safetensors weights and their string metadata; a missing or corrupt file is a UserError."""
    if not path.is_file():
        raise UserError(f"{path}: checkpoint weights not found")
    try:
        payload = path.read_bytes()
        tensors = st_load(payload)
        header_len = int.from_bytes(payload[:8], "little")
        metadata = json.loads(payload[8 : 8 + header_len]).get("__metadata__") or {}
    except (SafetensorError, ValueError, OSError) as e:
        raise UserError(f"{path}: corrupt or foreign weights file ({str(e).splitlines()[0]})") from None
    return tensors, metadata


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """Load safetensors weights; a missing or corrupt file is a UserError."""
    return load_weights_and_metadata(path)[0]


def state_bytes(state: dict[str, Any]) -> bytes:
    """Training state (tensors, numbers, strings, lists, dicts) in torch's format, loadable weights-only."""
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def load_state(path: Path) -> dict[str, Any]:
    """Load training state with weights_only=True: a pickle that would run code is refused."""
    if not path.is_file():
        raise UserError(f"{path}: training state not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).splitlines()[0]
        raise UserError(f"{path}: refused to load, not a plain weights-only state ({first})") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{path}: corrupt or truncated training state ({first})") from None
    if not isinstance(state, dict):
        raise UserError(f"{path}: training state is not a dictionary")
    return state


def step_dir_name(step: int) -> str:
    """Checkpoint folder name; zero-padded so names sort by step."""
    return f"step-{step:09d}"


def latest_checkpoint(root: Path) -> Path | None:
    """The folder `root/latest` names, or None when no checkpoint was ever committed.

    A step folder only appears by an atomic rename after its files are fsync'ed, so it is complete; when
    `latest` is missing (a crash between that rename and the pointer update, or a deleted pointer) the
    highest step folder is the last checkpoint. A damaged pointer, or one that is a symbolic link, is a
    UserError: nothing can safely choose for it.
    """
    pointer = root / LATEST
    if pointer.is_symlink():
        raise UserError(f"{pointer}: is a symbolic link, not the checkpoint pointer difflab writes")
    if not pointer.exists():
        steps = sorted(p for p in root.glob("step-*") if _STEP_DIR.fullmatch(p.name) and p.is_dir())
        return steps[-1] if steps else None
    try:
        with open(pointer, "rb") as f:
            raw = f.read(64)
        name = raw.decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        name = ""
    if not _STEP_DIR.fullmatch(name) or not (root / name).is_dir():
        raise UserError(f"{pointer}: corrupt checkpoint pointer (it does not name a checkpoint folder in {root})")
    return root / name


def remove_leftovers(folder: Path) -> None:
    """Delete temporary files and folders a killed writer left in `folder` (call only while holding the run lock)."""
    if not folder.is_dir():
        return
    for p in folder.iterdir():
        if p.name.startswith(".") and p.name.endswith(".tmp"):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def commit_checkpoint(root: Path, step: int, files: dict[str, bytes]) -> Path:
    """Write a whole checkpoint so that it appears all at once, and keep the previous one until it has.

    The files go into a temporary folder, are fsync'ed, the folder is renamed to `step-N`, and only then is
    the `latest` pointer replaced atomically; checkpoints of earlier steps, which this one supersedes, are
    deleted last. A crash or a full disk at any point leaves `latest` naming a complete checkpoint.
    """
    root.mkdir(parents=True, exist_ok=True)
    name = step_dir_name(step)
    final = root / name
    current = latest_checkpoint(root)
    if current == final:
        return final
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}.", suffix=".tmp"))
    try:
        for file_name, payload in files.items():
            _write_synced(tmp / file_name, payload)
            _normal_mode(tmp / file_name, folder=False)
        _fsync_dir(tmp)
        _normal_mode(tmp, folder=True)
        if final.exists():  # left by a crash between the rename and the pointer update; never pointed at
            shutil.rmtree(final)
        os.rename(tmp, final)
        _fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(root / LATEST, name + "\n")
    for old in root.iterdir():
        match = _STEP_DIR.fullmatch(old.name)
        if match and int(match.group(1)) < step:
            shutil.rmtree(old, ignore_errors=True)
    remove_leftovers(root)
    return final
