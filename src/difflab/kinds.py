"""The registry of data kinds: which kind a spec, an array or a stored run belongs to.

Adding a kind of data is its package (a `difflab.kind.Kind` and a `difflab.defaults.KindDefaults`) plus one
`register` line here, or one call of `register` from your own code. A kind's heavy modules are imported on
first use, so reading the defaults tables (`registered()`, for `difflab --help`) imports no torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from difflab.defaults import KindDefaults
from difflab.errors import UserError
from difflab.images.defaults import IMAGES
from difflab.points.defaults import POINTS

if TYPE_CHECKING:
    from difflab.data.training_set import DataInfo
    from difflab.kind import Kind


@dataclass
class _Entry:
    defaults: KindDefaults
    load: Callable[[], Kind]
    kind: Kind | None = None


_REGISTRY: dict[str, _Entry] = {}


def register(defaults: KindDefaults, load: Callable[[], Kind]) -> None:
    """Make a kind known by its defaults' name; `load` builds the kind (importing its heavy parts) on first use."""
    _REGISTRY[defaults.name] = _Entry(defaults, load)


def unregister(name: str) -> None:
    """Forget a kind (for tests that register their own)."""
    _REGISTRY.pop(name, None)


def registered() -> list[KindDefaults]:
    """The defaults of every known kind, in registration order."""
    return [entry.defaults for entry in _REGISTRY.values()]


def kind_named(name: str) -> Kind:
    """The kind called `name`; an unknown name is a UserError listing the known ones."""
    entry = _REGISTRY.get(name)
    if entry is None:
        raise UserError(f"unknown kind of data {name!r}; this difflab knows: {', '.join(_REGISTRY)}")
    if entry.kind is None:
        entry.kind = entry.load()
    return entry.kind


def kind_for_spec(spec: str) -> Kind:
    """The kind a data spec names: the first kind that claims it, else the catch-all kind."""
    entries = list(_REGISTRY.values())
    for entry in sorted(entries, key=lambda e: e.defaults.catch_all):
        if entry.defaults.claims_spec(spec) or entry.defaults.catch_all:
            return kind_named(entry.defaults.name)
    raise UserError(f"no kind of data reads {spec!r}")


def kind_for_array(array: np.ndarray) -> Kind:
    """The kind whose arrays have this many dimensions: points (N, D) or (N,), images (N, C, H, W)."""
    for entry in _REGISTRY.values():
        if array.ndim in entry.defaults.array_ndims:
            return kind_named(entry.defaults.name)
    shapes = " or ".join(e.defaults.array_shape for e in _REGISTRY.values() if e.defaults.array_ndims)
    raise UserError(f"expected {shapes}, got an array of shape {array.shape}")


def kind_for_info(info: DataInfo) -> Kind:
    """The kind of a trained run: the one it recorded, or for older runs the one whose items have its shape."""
    if info.kind is not None:
        return kind_named(info.kind)
    for entry in _REGISTRY.values():
        if len(info.shape) in entry.defaults.item_ndims:
            return kind_named(entry.defaults.name)
    raise UserError(f"no kind of data has items of shape {info.shape}")


def _points() -> Kind:
    from difflab.points.kind import PointKind

    return PointKind()


def _images() -> Kind:
    from difflab.images.kind import ImageKind

    return ImageKind()


register(POINTS, _points)
register(IMAGES, _images)
