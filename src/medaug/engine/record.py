"""Records of applied transforms: replaying them and inverting their spatial part."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..errors import ParameterError
from .compose import Compose
from .registry import transform_class
from .transform import SpatialTransform, Transform

__all__ = ["replay", "inverse_of"]


def _records(history: Iterable[dict[str, Any]]) -> list[Transform]:
    out = []
    for rec in history:
        if rec.get("check"):  # reports such as the output range check are not transforms
            continue
        if rec.get("replayable") is False:  # e.g. a wrapped MONAI/TorchIO transform (medaug.interop)
            raise ParameterError(
                f"history entry {rec.get('name')!r} cannot be rebuilt from its record, so this history cannot be "
                f"replayed or inverted: {rec.get('note') or 'it was recorded without replayable parameters'}"
            )
        cls = transform_class(rec.get("name", ""))
        if cls is None or not issubclass(cls, Transform):
            raise ParameterError(f"history entry {rec.get('name')!r} is not a known deterministic transform")
        out.append(cls(**rec.get("params", {})))
    return out


def replay(history: Iterable[dict[str, Any]], **options: Any) -> Compose:
    """A pipeline that re-applies exactly the transforms recorded in ``history``."""
    return Compose(_records(history), **options)


def inverse_of(history: Iterable[dict[str, Any]], **options: Any) -> Compose:
    """A pipeline undoing the spatial transforms of ``history`` (intensity ones are skipped).

    Use it for test-time augmentation: map a prediction made on an augmented
    sample back onto the original grid.  Raises :class:`ParameterError` when a
    spatial transform in the history cannot be inverted.
    """
    inv = [t.inverse() for t in reversed(_records(history)) if isinstance(t, SpatialTransform)]
    options.setdefault("fill", 0.0)
    return Compose(inv, **options)
