"""Resample onto another domain: a size, a spacing, isotropic spacing, or another image's grid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.grid import Grid
from ..engine.ranges import Numbers, count, for_axes, numbers
from ..engine.transform import SpatialTransform
from ..engine.warp import AffineWarp
from ..errors import InvalidImageError, ParameterError
from .crop import MAX_VOXELS_PER_AXIS

__all__ = ["Resample"]

#: Allowed spacings in mm: above 1 nm, at most 10 m.
SPACING_MM = (1e-6, 1e4)


@dataclass
class Resample(SpatialTransform):
    """Put the sample on a new grid covering the same physical extent (or on a reference grid).

    Give exactly one of these parameters.

    Parameters
    ----------
    spacing : float or list of float
        Target spacing in mm (x, y, z order); one number means isotropic.
    size : list of int
        Target size in voxels, array order (z, y, x).
    isotropic_size : int
        Isotropic spacing chosen so that the longest physical axis has this many voxels.
    reference : Grid, dict or str
        A grid, its ``to_dict()`` form, or the path of an image whose grid to use.

    Notes
    -----
    The new grid starts at the outer edge of the first voxel, like the old one
    (so the origin moves by half the change of spacing).  With ``size`` the far
    edge is kept exactly; with ``spacing`` the number of voxels is rounded, so
    when the extent is not a multiple of the new spacing the far edge moves by
    up to half a new voxel.  Down-sampling is not anti-aliased: blur first
    (``Blur``) when reducing resolution a lot.  The output grid's memory is
    checked before it is allocated (a too fine spacing is refused, naming the
    size it would need).
    """

    spacing: Numbers | None = None
    size: Numbers | None = None
    isotropic_size: int | None = None
    reference: dict[str, Any] | str | Grid | None = None

    def __post_init__(self) -> None:
        given = [v is not None for v in (self.spacing, self.size, self.isotropic_size, self.reference)]
        if sum(given) != 1:
            raise ParameterError("Resample needs exactly one of 'spacing', 'size', 'isotropic_size' or 'reference'")
        if self.spacing is not None:
            numbers(self.spacing, "spacing", SPACING_MM, low_open=True, unit="mm")
        if self.size is not None:
            numbers(self.size, "size", (1, MAX_VOXELS_PER_AXIS))
            if any(v != int(v) for v in numbers(self.size, "size")):
                raise ParameterError(f"'size' must hold whole voxel counts, got {self.size!r}")
        if self.isotropic_size is not None:
            self.isotropic_size = count(self.isotropic_size, "isotropic_size", (1, MAX_VOXELS_PER_AXIS))
        if isinstance(self.reference, Grid):
            self.reference = self.reference.to_dict()
        elif isinstance(self.reference, dict):
            try:
                self.reference = Grid.from_dict(self.reference).to_dict()
            except InvalidImageError as exc:
                raise ParameterError(f"'reference': {exc}") from None
        elif self.reference is not None and not isinstance(self.reference, str):
            raise ParameterError(f"'reference' must be a Grid, a grid dict or an image path, got {type(self.reference).__name__}")

    def output_grid(self, grid: Grid) -> Grid:
        n = grid.ndim
        if self.reference is not None:
            return _reference_grid(self.reference, n)
        old_sp = np.asarray(grid.spacing)
        extent = grid.extent
        if self.spacing is not None:
            sp = for_axes(self.spacing, n, "spacing")
            size_xyz = np.maximum(np.round(extent / sp), 1)
        elif self.size is not None:
            size_xyz = for_axes(self.size, n, "size", "array: z, y, x").astype(int)[::-1]
            if (size_xyz <= 0).any():
                raise ParameterError(f"'size' must be positive, got {self.size}")
            sp = extent / size_xyz
        else:
            if int(self.isotropic_size) <= 0:
                raise ParameterError(f"'isotropic_size' must be positive, got {self.isotropic_size}")
            iso = extent.max() / int(self.isotropic_size)
            sp = np.full(n, iso)
            size_xyz = np.maximum(np.round(extent / sp), 1)
        # keep the outer edge of the first voxel where it was
        origin = np.asarray(grid.origin) + grid.direction @ ((sp - old_sp) / 2.0)
        return Grid(tuple(int(s) for s in size_xyz[::-1]), tuple(float(v) for v in sp), tuple(origin), grid.direction)

    def warp(self, grid_in: Grid, grid_out: Grid) -> AffineWarp:
        return AffineWarp.identity(grid_in.ndim)

    def short(self) -> str:
        return "resample"


def _reference_grid(ref: Any, ndim: int) -> Grid:
    if isinstance(ref, str):
        from ..data.io import load

        g = load(ref).grid
    else:
        g = Grid.from_dict(ref)
    if g.ndim != ndim:
        raise ParameterError(f"reference grid is {g.ndim}D but the sample is {ndim}D")
    return g
