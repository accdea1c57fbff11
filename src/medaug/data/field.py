"""Displacement fields in millimetres, with geometry: store, evaluate, check for folds.

A :class:`DisplacementField` ``u`` lives on a :class:`~medaug.data.grid.Grid`
(the *fixed* or *reference* space) and defines the pull-back
``x_moving = x + u(x)`` for physical points ``x`` of that space — the same
convention as ITK's ``DisplacementFieldTransform``, so a field saved by medaug
is read by SimpleITK, ANTs or elastix tools as a transform, and vice versa.
Components are physical (x, y, z) millimetres, not voxels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy.ndimage import map_coordinates, spline_filter

from ..errors import ImageReadError, ImageWriteError, InvalidImageError, ParameterError
from .grid import Grid

__all__ = ["DisplacementField", "load_field", "save_field", "jacobian_determinant", "coarse_grid"]


@dataclass(eq=False)
class DisplacementField:
    """A displacement ``u(x)`` in mm sampled on a grid.

    Parameters
    ----------
    grid : Grid
        Where the field is sampled (array order z, y, x).
    data : ndarray
        Shape ``(ndim, *grid.shape)``; ``data[c]`` is the physical component c
        (x, y, z order) in mm.
    feature_mm : float, optional
        Shortest length over which the field bends (e.g. the B-spline control
        spacing); defaults to twice the largest grid spacing.
    source : str, optional
        Where it came from (a file path), for records.

    Examples
    --------
    >>> g = Grid((8, 8), spacing=(2.0, 2.0))
    >>> f = DisplacementField(g, np.zeros((2, 8, 8)))
    >>> f.evaluate(np.array([[3.0, 5.0]])).tolist()
    [[0.0, 0.0]]
    """

    grid: Grid
    data: np.ndarray
    feature_mm: float | None = None
    source: str | None = None
    _coef: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.data = np.asarray(self.data, np.float64)
        n = self.grid.ndim
        if self.data.shape != (n, *self.grid.shape):
            raise InvalidImageError(f"a {n}D displacement field needs shape {(n, *self.grid.shape)}, got {self.data.shape}")
        if not np.isfinite(self.data).all():
            raise InvalidImageError("the displacement field has NaN or infinite values", path=self.source)
        if self.feature_mm is None:
            self.feature_mm = 2.0 * float(max(self.grid.spacing))

    @property
    def ndim(self) -> int:
        return self.grid.ndim

    @property
    def max_norm_mm(self) -> float:
        """Largest displacement length in mm."""
        return float(np.sqrt((self.data**2).sum(0)).max(initial=0.0))

    def evaluate(self, points: np.ndarray) -> np.ndarray:
        """Displacements (N, ndim) in mm at physical points (N, ndim), cubic interpolation.

        Outside the grid the field continues with its border values (a constant
        shift there, never a fold).
        """
        if self._coef is None:
            self._coef = np.stack([spline_filter(c, order=3, mode="nearest") for c in self.data])
        idx = self.grid.physical_to_index(np.asarray(points, float))[:, ::-1].T  # array order
        return np.stack(
            [map_coordinates(c, idx, order=3, mode="nearest", prefilter=False) for c in self._coef], axis=1
        )

    def scaled(self, factor: float) -> DisplacementField:
        """The field times ``factor`` (0 gives the identity)."""
        return DisplacementField(self.grid, self.data * float(factor), self.feature_mm, self.source)

    @cached_property
    def gradient(self) -> np.ndarray:
        """``∂u_i/∂x_j`` in physical coordinates, shape (ndim, ndim, *shape)."""
        return _physical_gradient(self.data, self.grid)

    def jacobian_determinant(self, scale: float = 1.0) -> np.ndarray:
        """``det(I + scale * ∇u)`` at every grid point (1 = volume kept, <= 0 = folded)."""
        return det_identity_plus(scale * self.gradient)

    def to_sitk(self) -> sitk.Image:
        """A SimpleITK vector image (usable with ``sitk.DisplacementFieldTransform``)."""
        arr = np.moveaxis(self.data, 0, -1)
        img = sitk.GetImageFromArray(arr, isVector=True)
        img.SetSpacing(self.grid.spacing)
        img.SetOrigin(self.grid.origin)
        img.SetDirection(self.grid.direction.ravel().tolist())
        return img

    @classmethod
    def from_sitk(cls, img: sitk.Image, *, feature_mm: float | None = None, source: str | None = None) -> DisplacementField:
        """From a SimpleITK vector image whose components are physical mm."""
        n = img.GetDimension()
        if img.GetNumberOfComponentsPerPixel() != n:
            raise InvalidImageError(
                f"a displacement field needs {n} components per voxel, got {img.GetNumberOfComponentsPerPixel()}", path=source
            )
        arr = sitk.GetArrayFromImage(img)
        grid = Grid(arr.shape[:-1], img.GetSpacing(), img.GetOrigin(), np.asarray(img.GetDirection()).reshape(n, n))
        return cls(grid, np.moveaxis(arr, -1, 0).astype(np.float64), feature_mm, source)

    def resampled(self, grid: Grid) -> DisplacementField:
        """The same displacement sampled on another grid (cubic interpolation)."""
        pts = _grid_points(grid)
        data = self.evaluate(pts).T.reshape(grid.ndim, *grid.shape)
        return DisplacementField(grid, data, self.feature_mm, self.source)


def save_field(f: DisplacementField, path: str | Path) -> None:
    """Write a field as a vector image (``.nii.gz``, ``.nii``, ``.mha``, ``.nrrd``), atomically.

    Stored as float32; the field's feature length goes into the file's metadata
    where the format keeps it (MHA/NRRD; NIfTI drops it and the default applies).
    """
    from .io import write_itk

    target = Path(path)
    if not target.parent.is_dir():
        raise ImageWriteError(f"the folder {target.parent} does not exist; create it first", path=target)
    img = sitk.Cast(f.to_sitk(), sitk.sitkVectorFloat32)
    img.SetMetaData("medaug_feature_mm", f"{f.feature_mm:.6g}")
    write_itk(img, target, compress=True)


def load_field(path: str | Path) -> DisplacementField:
    """Read a displacement field written by :func:`save_field` (or by ITK/ANTs tools).

    Raises
    ------
    ImageReadError
        The file is missing or unreadable.
    InvalidImageError
        It is not a vector image with one component per dimension, or holds NaN.
    """
    p = Path(path)
    if not p.is_file():
        raise ImageReadError("displacement field not found", path=p)
    try:
        img = sitk.ReadImage(str(p))
    except RuntimeError as exc:
        raise ImageReadError(f"cannot read the displacement field ({str(exc).strip().splitlines()[-1]})", path=p) from None
    feature = None
    if img.HasMetaDataKey("medaug_feature_mm"):
        try:
            feature = float(img.GetMetaData("medaug_feature_mm"))
        except ValueError:
            feature = None
    return DisplacementField.from_sitk(img, feature_mm=feature, source=str(p))


def coarse_grid(grid: Grid, max_size: int = 96) -> Grid:
    """A grid over the same box with at most ``max_size`` points per axis (never finer than ``grid``).

    Registration fields are smooth, so they are stored on such a grid: a 512³
    CT's field then takes a few MB instead of 1.6 GB.
    """
    if max_size < 4:
        raise ParameterError(f"max_size must be >= 4, got {max_size}")
    size = np.asarray(grid.size_xyz, float)
    new_size = np.minimum(size, max_size).astype(int)
    # keep the box: first and last sample at the same physical corners
    new_spacing = np.asarray(grid.spacing) * np.maximum(size - 1, 1) / np.maximum(new_size - 1, 1)
    new_spacing = np.where(new_size == size, grid.spacing, new_spacing)
    return Grid(tuple(int(s) for s in new_size[::-1]), tuple(new_spacing), grid.origin, grid.direction)


def jacobian_determinant(f: DisplacementField, scale: float = 1.0) -> np.ndarray:
    """``det(I + scale * ∇u)`` of a field; see :meth:`DisplacementField.jacobian_determinant`."""
    return f.jacobian_determinant(scale)


# ---------------------------------------------------------------- helpers
def _grid_points(grid: Grid) -> np.ndarray:
    idx = np.stack(np.meshgrid(*[np.arange(s, dtype=float) for s in grid.shape], indexing="ij"), axis=-1)
    idx_xyz = idx.reshape(-1, grid.ndim)[:, ::-1]
    return grid.index_to_physical(idx_xyz)


def _physical_gradient(data: np.ndarray, grid: Grid) -> np.ndarray:
    """Chain rule: ∂u/∂x = ∂u/∂index · ∂index/∂x, with the direction cosines taken into account."""
    n = grid.ndim
    d_idx = np.empty((n, n, *data.shape[1:]))  # [component, ITK index axis (x, y, z), ...]
    for a in range(n):
        axis = n - 1 - a  # ITK axis a is array axis n-1-a
        if data.shape[1 + axis] > 1:
            d_idx[:, a] = np.gradient(data, axis=1 + axis)
        else:
            d_idx[:, a] = 0.0
    inv = np.linalg.inv(grid.direction @ np.diag(grid.spacing))  # index = inv @ (x - origin)
    return np.einsum("ca...,aj->cj...", d_idx, inv)


def det_identity_plus(g: np.ndarray) -> np.ndarray:
    n = g.shape[0]
    a = g + np.eye(n).reshape(n, n, *([1] * (g.ndim - 2)))
    if n == 2:
        return a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
    return (
        a[0, 0] * (a[1, 1] * a[2, 2] - a[1, 2] * a[2, 1])
        - a[0, 1] * (a[1, 0] * a[2, 2] - a[1, 2] * a[2, 0])
        + a[0, 2] * (a[1, 0] * a[2, 1] - a[1, 1] * a[2, 0])
    )


def field_summary(f: DisplacementField, scale: float = 1.0) -> dict[str, Any]:
    """Jacobian range, fold count and largest displacement: the numbers a quality report needs."""
    det = f.jacobian_determinant(scale)
    return {
        "jacobian_min": float(det.min()),
        "jacobian_max": float(det.max()),
        "folds": int((det <= 0).sum()),
        "max_displacement_mm": float(scale * f.max_norm_mm),
    }
