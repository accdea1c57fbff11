"""Small matrix helpers shared by the spatial transforms (axis names: :mod:`medaug.data.axes`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


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
