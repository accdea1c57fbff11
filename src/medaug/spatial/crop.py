"""Crop and pad: change the output grid without moving content."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.grid import Grid
from ..engine.ranges import BIG, Numbers, for_axes, number, numbers
from ..engine.transform import Context, RandomTransform, SpatialTransform
from ..engine.warp import AffineWarp
from ..errors import ParameterError

__all__ = ["Crop", "CenterCrop", "RandomCrop", "Pad"]

#: Largest size or offset along one axis, in voxels.
MAX_VOXELS_PER_AXIS = 1 << 16
#: Sizes are given for every axis (one number) or per array axis (z, y, x).
Sizes = Numbers


def _ints(value: Any, name: str, lo: int) -> list[int]:
    vals = numbers(value, name, (lo, MAX_VOXELS_PER_AXIS) if lo >= 0 else (-MAX_VOXELS_PER_AXIS, MAX_VOXELS_PER_AXIS))
    if any(v != int(v) for v in vals):
        raise ParameterError(f"'{name}' must hold whole voxel counts (array order z, y, x), got {value!r}")
    return [int(v) for v in vals]


def _per_axis(values: list[int], ndim: int, name: str) -> np.ndarray:
    """One value for every array axis, or one per axis (z, y, x), as integers."""
    return for_axes(values, ndim, name, "array: z, y, x").astype(int)


def _size(size: Any, ndim: int, name: str = "size") -> np.ndarray:
    return _per_axis(_ints(size, name, 1), ndim, name)


@dataclass
class Crop(SpatialTransform):
    """Keep the box of ``size`` voxels starting at ``start`` (array order; negative or oversized pads).

    Parameters
    ----------
    start : int or list of int
        First kept voxel, array order (z, y, x).
    size : int or list of int
        Output size, array order (z, y, x).
    background : dict of str to float, optional
        Background intensity per intensity image, as measured by
        :class:`~medaug.spatial.preprocess.CropForeground`; stored in the
        sample's ``metadata["background"]``, where the ``"background"`` fill finds it.
    """

    renamed_from = ("ForegroundCrop",)

    start: Sizes = 0
    size: Sizes = 1
    background: dict[str, float] | None = None

    def __post_init__(self) -> None:
        _ints(self.start, "start", -1)
        _ints(self.size, "size", 1)
        if self.background is not None:
            if not isinstance(self.background, dict):
                raise ParameterError(f"Crop 'background' maps image names to intensities, got {self.background!r}")
            self.background = {str(k): number(v, f"background[{k}]", (-BIG, BIG)) for k, v in self.background.items()}

    def output_grid(self, grid: Grid) -> Grid:
        n = grid.ndim
        start = _per_axis(_ints(self.start, "start", -1), n, "start")
        size = _size(self.size, n)
        origin = grid.index_to_physical(start[::-1].astype(float)[None])[0]
        return grid.with_(shape=tuple(int(s) for s in size), origin=tuple(origin))

    def warp(self, grid_in: Grid, grid_out: Grid) -> AffineWarp:
        return AffineWarp.identity(grid_in.ndim)

    def update_metadata(self, metadata: dict[str, Any]) -> None:
        if self.background:
            metadata["background"] = {**metadata.get("background", {}), **self.background}

    def short(self) -> str:
        return "fg crop" if self.background else "crop"


@dataclass
class Pad(SpatialTransform):
    """Add ``before`` and ``after`` voxels per axis (array order), filled with the fill value.

    Parameters
    ----------
    before, after : int or list of int
        Voxels added before the first and after the last voxel, one number for
        every axis or one per axis in array order (z, y, x).
    """

    before: Sizes = 0
    after: Sizes = 0

    def __post_init__(self) -> None:
        _ints(self.before, "before", 0)
        _ints(self.after, "after", 0)

    def output_grid(self, grid: Grid) -> Grid:
        n = grid.ndim
        b, a = (_per_axis(_ints(v, k, 0), n, k) for v, k in ((self.before, "before"), (self.after, "after")))
        return Crop(start=(-b).tolist(), size=(np.asarray(grid.shape) + a + b).tolist()).output_grid(grid)

    def warp(self, grid_in: Grid, grid_out: Grid) -> AffineWarp:
        return AffineWarp.identity(grid_in.ndim)

    def short(self) -> str:
        return "pad"


@dataclass
class CenterCrop(SpatialTransform):
    """Crop (or pad) symmetrically to ``size`` voxels (array order).

    Parameters
    ----------
    size : int or list of int
        Output size in voxels, one number for every axis or one per axis in
        array order (z, y, x).
    """

    size: Sizes = 1

    def __post_init__(self) -> None:
        _ints(self.size, "size", 1)

    def output_grid(self, grid: Grid) -> Grid:
        size = _size(self.size, grid.ndim)
        start = (np.asarray(grid.shape) - size) // 2
        return Crop(start=start.tolist(), size=size.tolist()).output_grid(grid)

    def warp(self, grid_in: Grid, grid_out: Grid) -> AffineWarp:
        return AffineWarp.identity(grid_in.ndim)

    def short(self) -> str:
        return "centre crop"


@dataclass
class RandomCrop(RandomTransform):
    """A random box of ``size`` voxels (array order); axes smaller than ``size`` are padded centrally.

    Parameters
    ----------
    size : int or list of int
        Box size in voxels, one number for every axis or one per axis in
        array order (z, y, x).
    p : float
        Probability of applying.
    """

    size: Sizes = 64
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        _ints(self.size, "size", 1)

    def sample(self, rng: np.random.Generator, ctx: Context) -> Crop:
        shape = np.asarray(ctx.grid.shape)
        size = _size(self.size, ctx.ndim)
        room = shape - size
        start = np.where(room >= 0, [rng.integers(0, max(r, 0) + 1) for r in room], room // 2)
        return Crop(start=start.astype(int).tolist(), size=size.tolist())
