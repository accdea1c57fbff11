"""Axis names, stated once for all of medaug.

Two kinds of axis appear in parameters, and each has one spelling everywhere:

* **Physical axes** of the patient, in ITK/DICOM LPS coordinates: ``LR`` (x,
  right to left), ``AP`` (y, anterior to posterior), ``SI`` (z, inferior to
  superior); also ``L``, ``R``, ``A``, ``P``, ``S``, ``I`` or the index 0, 1,
  2.  Spatial transforms (flips, rotations, translations, radial distortion)
  act about physical axes, so a flip ``LR`` mirrors left and right whatever
  the image's direction cosines.  Per-axis values are listed in (x, y, z) =
  (LR, AP, SI) order.  The letters x, y, z are not physical axis names: they
  name index axes, below.
* **Index axes** of the image grid: ``x``, ``y``, ``z`` (or 0, 1, 2), as ITK
  numbers them: ``x`` varies fastest in memory.  Acquisition-related
  transforms (the k-space phase-encode axis of MRI artefacts, the slice axis of
  a low-resolution simulation) use index axes, because acquisitions follow the
  stored grid, not the patient.  Arrays are stored in (z, y, x) order, so index
  axis ``x`` is the last array axis (:func:`array_axis`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ParameterError, did_you_mean

__all__ = ["physical_axis", "index_axis", "array_axis", "axis_choices", "pick_axis"]

# ITK/DICOM patient coordinates (LPS): x runs right→left, y anterior→posterior, z inferior→superior.
_AXIS_NAMES = {
    "LR": 0, "RL": 0, "L": 0, "R": 0,
    "AP": 1, "PA": 1, "A": 1, "P": 1,
    "SI": 2, "IS": 2, "S": 2, "I": 2,
}


def physical_axis(axis: int | str, ndim: int) -> int:
    """Physical axis index (0 = x/LR, 1 = y/AP, 2 = z/SI) from a name or an index."""
    if isinstance(axis, str):
        key = axis.strip().upper()
        if key in ("X", "Y", "Z"):
            raise ParameterError(
                f"{axis!r} names an index axis of the stored grid (acquisition artefacts use those); "
                "physical axes are LR, AP, SI (or 0, 1, 2 in that order)"
            )
        if key not in _AXIS_NAMES:
            raise ParameterError(f"unknown axis {axis!r}: use LR, AP, SI or an index{did_you_mean(key, _AXIS_NAMES)}")
        idx = _AXIS_NAMES[key]
    elif isinstance(axis, (int, np.integer)) and not isinstance(axis, bool):
        idx = int(axis)
    else:
        raise ParameterError(f"an axis is a name (LR, AP, SI) or an index 0..{ndim - 1}, got {axis!r}")
    if not 0 <= idx < ndim:
        raise ParameterError(f"axis {axis!r} does not exist in a {ndim}D image (physical axes 0..{ndim - 1}: x/LR, y/AP, z/SI)")
    return idx


def array_axis(axis: Any, ndim: int, name: str = "axis") -> int:
    """Array axis (z, y, x order) of index axis ``axis`` (0 = x, 1 = y, 2 = z, or 'x', 'y', 'z')."""
    if isinstance(axis, str) and axis.lower() in ("x", "y", "z"):
        axis = "xyz".index(axis.lower())
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not 0 <= int(axis) < ndim:
        raise ParameterError(
            f"'{name}' must be an index axis 0..{ndim - 1} (0 = x, 1 = y, 2 = z) of a {ndim}D image"
            f", got {axis!r}"
        )
    return ndim - 1 - int(axis)


def index_axis(axis: Any, name: str = "axis") -> int:
    """The index axis 0, 1 or 2 (x, y, z) named by ``axis`` (an int or ``'x'``, ``'y'``, ``'z'``)."""
    array_axis(axis, 3, name)
    return int("xyz".index(axis.lower())) if isinstance(axis, str) else int(axis)


def axis_choices(axis: Any, name: str = "axis") -> list[int] | None:
    """None (any axis), one axis, or a list of candidate axes."""
    if axis is None:
        return None
    if isinstance(axis, (str, int, np.integer)):
        return [index_axis(axis, name)]
    if not isinstance(axis, (list, tuple)):
        raise ParameterError(f"'{name}' must be an index axis (0, 1, 2 or x, y, z) or a list of them, got {axis!r}")
    choices = [index_axis(a, name) for a in axis]
    if not choices:
        raise ParameterError(f"'{name}' must list at least one axis")
    return choices


def pick_axis(rng: np.random.Generator, choices: list[int] | None, ndim: int, name: str) -> int:
    """One index axis drawn from ``choices`` (None: any axis of an ``ndim``-D image)."""
    options = list(range(ndim)) if choices is None else choices
    for a in options:
        array_axis(a, ndim, name)
    return int(options[int(rng.integers(len(options)))])
