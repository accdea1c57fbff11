"""Physical axis names and small matrix helpers shared by the spatial transforms."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ParameterError, did_you_mean

# ITK/DICOM patient coordinates (LPS): x runs right→left, y anterior→posterior, z inferior→superior.
_AXIS_NAMES = {
    "LR": 0, "RL": 0, "L": 0, "R": 0, "X": 0,
    "AP": 1, "PA": 1, "A": 1, "P": 1, "Y": 1,
    "SI": 2, "IS": 2, "S": 2, "I": 2, "Z": 2,
}


def physical_axis(axis: int | str, ndim: int) -> int:
    """Physical axis index (0 = x/LR, 1 = y/AP, 2 = z/SI) from a name or an index."""
    if isinstance(axis, str):
        key = axis.strip().upper()
        if key not in _AXIS_NAMES:
            raise ParameterError(f"unknown axis {axis!r}: use LR, AP, SI or an index{did_you_mean(key, _AXIS_NAMES)}")
        idx = _AXIS_NAMES[key]
    else:
        idx = int(axis)
    if not 0 <= idx < ndim:
        raise ParameterError(f"axis {axis!r} does not exist in a {ndim}D image (physical axes 0..{ndim - 1}: x/LR, y/AP, z/SI)")
    return idx


def rotation_matrix(degrees: Sequence[float]) -> np.ndarray:
    """Rotation about the physical axes: one angle in 2D, (x, y, z) angles in 3D, ``Rz @ Ry @ Rx``."""
    a = np.deg2rad(np.asarray(degrees, float))
    if a.size == 1:
        c, s = np.cos(a[0]), np.sin(a[0])
        return np.array([[c, -s], [s, c]])
    cx, cy, cz = np.cos(a)
    sx, sy, sz = np.sin(a)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def homogeneous(linear: np.ndarray, translation: np.ndarray) -> np.ndarray:
    n = linear.shape[0]
    m = np.eye(n + 1)
    m[:n, :n] = linear
    m[:n, n] = translation
    return m


def about_point(linear: np.ndarray, center: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """Homogeneous matrix of ``y = L (x - c) + c + t``."""
    return homogeneous(linear, center + translation - linear @ center)
