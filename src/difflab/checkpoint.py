"""Atomic, code-free persistence: safetensors for weights, weights-only torch files for state.

Every write goes to a temporary file in the same directory, is flushed and fsync'ed, then renamed
over the target, so a crash or a full disk leaves either the old file or the new one, never a
mix. Loading never unpickles arbitrary objects.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from difflab.errors import UserError


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write bytes to `path` via temp file + fsync + rename (POSIX-atomic replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Atomically write UTF-8 text."""
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, obj: Any) -> None:
    """Atomically write pretty JSON."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_weights(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Save a flat dict of tensors as safetensors, atomically."""
    clean = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    atomic_write_bytes(path, st_save(clean))


def load_weights(path: Path) -> dict[str, torch.Tensor]:
    """Load safetensors weights; a missing or corrupt file is a UserError."""
    if not path.is_file():
        raise UserError(f"{path}: checkpoint weights not found")
    try:
        return st_load(path.read_bytes())
    except (SafetensorError, ValueError, OSError) as e:
        raise UserError(f"{path}: corrupt or foreign weights file ({str(e).splitlines()[0]})") from None


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Save training state (tensors, numbers, lists, dicts) with torch.save, atomically."""
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


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
