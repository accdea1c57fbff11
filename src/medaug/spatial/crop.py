"""Crop and pad: change the output grid without moving content."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.grid import Grid
from ..engine.transform import Context, RandomTransform, SpatialTransform
from ..engine.warp import AffineWarp
from ..errors import ParameterError

__all__ = ["Crop", "CenterCrop", "RandomCrop", "Pad"]


def _size(size: Any, ndim: int, name: str = "size") -> np.ndarray:
    arr = np.atleast_1d(np.asarray(size, int))
    if arr.size == 1:
        arr = np.full(ndim, arr[0])
    if arr.size != ndim or (arr <= 0).any():
        raise ParameterError(f"'{name}' needs 1 or {ndim} positive sizes (array order z, y, x), got {size}")
    return arr


@dataclass
class Crop(SpatialTransform):
    """Keep the box of ``size`` voxels starting at ``start`` (array order; negative or oversized pads).

    Parameters
    ----------
    start : list of int
        First kept voxel, array order (z, y, x).
    size : list of int
        Output size, array order (z, y, x).
    """

    start: Any = 0
    size: Any = 1

    def output_grid(self, grid: Grid) -> Grid:
        n = grid.ndim
        start = np.atleast_1d(np.asarray(self.start, int))
        if start.size == 1:
            start = np.full(n, start[0])
        if start.size != n:
            raise ParameterError(f"'start' needs {n} indices (array order), got {self.start}")
        size = _size(self.size, n)
        origin = grid.index_to_physical(start[::-1].astype(float)[None])[0]
        return grid.with_(shape=tuple(int(s) for s in size), origin=tuple(origin))

    def warp(self, grid_in: Grid, grid_out: Grid) -> AffineWarp:
        return AffineWarp.identity(grid_in.ndim)

    def short(self) -> str:
        return "crop"


@dataclass
class Pad(SpatialTransform):
    """Add ``before`` and ``after`` voxels per axis (array order), filled with the fill value."""

    before: Any = 0
    after: Any = 0

    def output_grid(self, grid: Grid) -> Grid:
        n = grid.ndim
        b = np.atleast_1d(np.asarray(self.before, int)) * np.ones(n, int)
        a = np.atleast_1d(np.asarray(self.after, int)) * np.ones(n, int)
        if (b < 0).any() or (a < 0).any():
            raise ParameterError(f"Pad widths must be >= 0, got before={self.before}, after={self.after}")
        return Crop(start=(-b).tolist(), size=(np.asarray(grid.shape) + a + b).tolist()).output_grid(grid)

    def warp(self, grid_in: Grid, grid_out: Grid) -> AffineWarp:
        return AffineWarp.identity(grid_in.ndim)


@dataclass
class CenterCrop(SpatialTransform):
    """Crop (or pad) symmetrically to ``size`` voxels (array order)."""

    size: Any = 1

    def output_grid(self, grid: Grid) -> Grid:
        size = _size(self.size, grid.ndim)
        start = (np.asarray(grid.shape) - size) // 2
        return Crop(start=start.tolist(), size=size.tolist()).output_grid(grid)

    def warp(self, grid_in: Grid, grid_out: Grid) -> AffineWarp:
        return AffineWarp.identity(grid_in.ndim)



@dataclass
class RandomCrop(RandomTransform):
    """A random box of ``size`` voxels (array order); axes smaller than ``size`` are padded centrally."""

    size: Any = 64
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        _size(self.size, 3 if np.size(self.size) in (1, 3) else 2)

    def sample(self, rng: np.random.Generator, ctx: Context) -> Crop:
        shape = np.asarray(ctx.grid.shape)
        size = _size(self.size, ctx.ndim)
        room = shape - size
        start = np.where(room >= 0, [rng.integers(0, max(r, 0) + 1) for r in room], room // 2)
        return Crop(start=start.astype(int).tolist(), size=size.tolist())
