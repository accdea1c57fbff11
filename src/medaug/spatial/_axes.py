"""Small matrix helpers shared by the spatial transforms (axis names: :mod:`medaug.data.axes`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..data.grid import Grid


def rotation_matrix(degrees: Sequence[float]) -> np.ndarray:
    """Rotation about the physical axes: one angle in 2D; (x, y, z) = (LR, AP, SI) angles in 3D.

    In 3D the matrix is ``Rz @ Ry @ Rx``: the rotation about x (LR) acts first,
    then the one about y (AP), then the one about z (SI), all about the fixed
    patient axes.  Each is right-handed (positive: counter-clockwise seen from
    the positive end of its axis); the 2D angle is the one about z (x towards y).
    """
    a = np.deg2rad(np.asarray(degrees, float))
    if a.size == 1:
        c, s = np.cos(a.flat[0]), np.sin(a.flat[0])
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


def physical_extent(grid: Grid) -> np.ndarray:
    """Length of the field of view along each physical axis (x, y, z) = (LR, AP, SI), in mm.

    The extent of the box spanned by the voxels, measured along the patient
    axes: on a sagittally stored image the first index axis runs along AP, and
    its length counts for AP, not for LR (:attr:`Grid.extent` is per index axis).
    """
    return np.abs(grid.direction) @ grid.extent
