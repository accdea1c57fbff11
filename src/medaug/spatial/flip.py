"""Flips: reflections across a plane through the grid centre, along physical axes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..data.axes import physical_axis
from ..data.grid import Grid
from ..engine.transform import Context, RandomTransform, SpatialTransform
from ..engine.warp import AffineWarp
from ..errors import ParameterError
from ._axes import about_point

__all__ = ["Flip", "RandomFlip"]


#: An axis name (``LR``, ``AP``, ``SI`` ...) or index, or a list of them.
Axes = str | int | Sequence[str | int]


def _axes_list(axes: Axes) -> list[str | int]:
    if isinstance(axes, (str, int)):
        return [axes]
    if not isinstance(axes, Sequence):
        raise ParameterError(f"'axes' must be an axis name (LR, AP, SI) or index, or a list of them, got {axes!r}")
    return list(axes)


@dataclass
class Flip(SpatialTransform):
    """Reflect the content across the plane through the grid centre normal to each axis.

    Parameters
    ----------
    axes : list of str or int
        Physical axes: ``LR`` (x), ``AP`` (y), ``SI`` (z), or indices 0, 1, 2.
        With an identity direction this equals flipping the array; with an
        oblique direction it is still the anatomical reflection.
    """

    axes: Axes = ("LR",)

    def __post_init__(self) -> None:
        self.axes = _axes_list(self.axes)
        for a in self.axes:
            physical_axis(a, 3)

    def _matrix(self, grid: Grid) -> np.ndarray:
        d = np.ones(grid.ndim)
        for a in self.axes:
            d[physical_axis(a, grid.ndim)] *= -1
        return about_point(np.diag(d), grid.center(), np.zeros(grid.ndim))

    def warp(self, grid_in: Grid, grid_out: Grid) -> AffineWarp:
        return AffineWarp(self._matrix(grid_in))  # a reflection is its own inverse

    def inverse(self, grid: Grid | None = None) -> Flip:
        return Flip(axes=list(self.axes))

    def short(self) -> str:
        return "flip " + "+".join(str(a) for a in self.axes)


@dataclass
class RandomFlip(RandomTransform):
    """Flip each listed axis independently with probability ``p``.

    Parameters
    ----------
    axes : list of str or int
        Candidate axes (``LR``, ``AP``, ``SI`` or 0, 1, 2).
    p : float
        Chance of flipping each axis (``{axes: [LR], p: 0.5}`` flips left-right half the time).
    """

    #: ``p`` is the per-axis probability, drawn here rather than by the pipeline.
    draws_own_p = True

    axes: Axes = ("LR",)
    p: float = 0.5

    def __post_init__(self) -> None:
        self.axes = _axes_list(self.axes)
        if not self.axes:
            raise ParameterError("RandomFlip 'axes' must name at least one axis")
        for a in self.axes:
            physical_axis(a, 3)
        self.p = self.check_p(self.p)

    def sample(self, rng: np.random.Generator, ctx: Context) -> Flip | None:
        for a in self.axes:
            physical_axis(a, ctx.ndim)
        chosen = [a for a in self.axes if rng.random() < self.p]
        return Flip(axes=chosen) if chosen else None
