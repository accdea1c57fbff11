"""Elastic deformations in mm: coarse B-spline control grid, and dense Simard-style fields.

Both are defined on the physical box of the grid they are applied to and are
kept coarse: the engine evaluates them on a lattice of the output grid, never
voxel by voxel.  Their random displacements are regenerated from a recorded
``seed``, so the history stays small and replays exactly.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.ndimage import gaussian_filter, map_coordinates

from ..data.grid import Grid
from ..engine.ranges import Numbers, Range, RangeLike, count, flag, for_axes, number, numbers
from ..engine.transform import Context, RandomTransform, SpatialTransform
from ..engine.warp import FieldWarp
from ..errors import ParameterError
from . import _bspline as bspline

__all__ = ["ElasticBSpline", "ElasticDense", "RandomElastic"]

#: Control points per axis.
CONTROL_POINTS = (4, 64)
#: Displacements in mm (B-spline ``max_displacement``, dense ``alpha``).
DISPLACEMENT_MM = (0.0, 500.0)
#: Smoothness of dense fields in mm.
SIGMA_MM = (0.1, 1000.0)
#: Largest random-field lattice of a dense field, per axis.
DENSE_LATTICE = 128
SEED = (0, 2**63 - 1)


def _check_control_points(value: Any) -> None:
    numbers(value, "control_points", CONTROL_POINTS, integer=True)


def _unit_index(grid: Grid, points: np.ndarray) -> np.ndarray:
    """Continuous ITK index scaled to [0, 1] across the grid (x, y, z order)."""
    idx = grid.physical_to_index(points)
    size = np.maximum(np.asarray(grid.size_xyz, float) - 1.0, 1.0)
    return idx / size


@dataclass
class ElasticBSpline(SpatialTransform):
    """Smooth deformation from random displacements on a coarse cubic B-spline grid.

    Parameters
    ----------
    control_points : int or list of int
        Control points per axis (x, y, z), spread evenly over the grid, >= 4.
    max_displacement : float or list of float
        Control-point displacements are uniform in ±this, in mm per physical axis.
        The B-spline smooths them, so the field itself stays below this bound.
    seed : int
        Seed of the control-point displacements.
    locked_borders : int
        Outer layers of control points held at zero displacement.
    """

    control_points: Numbers = 7
    max_displacement: Numbers = 7.0
    seed: int = 0
    locked_borders: int = 1

    fold_hint = ("draw it with a smaller displacement: RandomElastic with fold_guard=True (the default) "
                 "caps it where a B-spline cannot fold")

    def __post_init__(self) -> None:
        _check_control_points(self.control_points)
        numbers(self.max_displacement, "max_displacement", DISPLACEMENT_MM, unit="mm")
        self.seed = count(self.seed, "seed", SEED)
        self.locked_borders = count(self.locked_borders, "locked_borders", (0, 32))

    def coefficients(self, ndim: int) -> np.ndarray:
        k = for_axes(self.control_points, ndim, "control_points").astype(int)
        d = for_axes(self.max_displacement, ndim, "max_displacement")
        rng = np.random.default_rng(self.seed)
        coef = rng.uniform(-1.0, 1.0, size=(ndim, *k)) * d.reshape(ndim, *([1] * ndim))
        b = int(self.locked_borders)
        if b > 0:
            mask = np.zeros(tuple(k), bool)
            mask[tuple(slice(b, ki - b) for ki in k)] = True
            coef = coef * mask
        return coef

    def warp(self, grid_in: Grid, grid_out: Grid) -> FieldWarp:
        n = grid_in.ndim
        coef = self.coefficients(n)
        k = np.asarray(coef.shape[1:], float)

        def displacement(points: np.ndarray) -> np.ndarray:
            return bspline.evaluate(coef, _unit_index(grid_in, points) * (k - 1))

        spacing = grid_in.extent / np.maximum(k - 1, 1)
        return FieldWarp(displacement, n, float(spacing.min()), float(np.abs(coef).max(initial=0.0)))

    def short(self) -> str:
        return f"elastic {np.max(self.max_displacement):.0f}mm"


@dataclass
class ElasticDense(SpatialTransform):
    """Simard-style elastic field: smoothed random displacements, in mm.

    Parameters
    ----------
    alpha : float
        Peak displacement in mm (the smoothed field is scaled so its largest
        component is ``alpha``).
    sigma : float
        Smoothing of the random field in mm (larger: smoother, larger-scale warps).
    seed : int
        Seed of the random field.
    """

    alpha: float = 5.0
    sigma: float = 10.0
    seed: int = 0

    fold_hint = "use a smaller alpha or a larger sigma (a smoother field)"

    def __post_init__(self) -> None:
        self.alpha = number(self.alpha, "alpha", DISPLACEMENT_MM, unit="mm")
        self.sigma = number(self.sigma, "sigma", SIGMA_MM, unit="mm")
        self.seed = count(self.seed, "seed", SEED)

    def warp(self, grid_in: Grid, grid_out: Grid) -> FieldWarp:
        n = grid_in.ndim
        extent = grid_in.extent
        # random values every sigma/3 (or every voxel), at most DENSE_LATTICE per axis
        step = max(self.sigma / 3.0, min(grid_in.spacing), float(extent.max()) / (DENSE_LATTICE - 1))
        counts = np.maximum(np.ceil(extent / step).astype(int) + 1, 4)
        rng = np.random.default_rng(self.seed)
        noise = rng.uniform(-1.0, 1.0, size=(n, *counts))
        sig = self.sigma / step
        field = np.stack([gaussian_filter(noise[c], sig, mode="constant") for c in range(n)])
        peak = np.abs(field).max()
        field = field * (self.alpha / peak if peak > 0 else 0.0)
        cnt = counts.astype(float)

        def displacement(points: np.ndarray) -> np.ndarray:
            u = _unit_index(grid_in, points) * (cnt - 1)
            return np.stack(
                [map_coordinates(field[c], u.T, order=3, mode="nearest", prefilter=True) for c in range(n)], axis=1
            )

        return FieldWarp(displacement, n, float(self.sigma), float(self.alpha))

    def short(self) -> str:
        return f"elastic α{self.alpha:.0f}mm σ{self.sigma:.0f}mm"


@dataclass
class RandomElastic(RandomTransform):
    """Random elastic deformation, B-spline (default) or dense.

    Parameters
    ----------
    kind : {"bspline", "dense"}
        ``bspline``: displacements on a coarse control grid, cubic B-spline
        interpolated (``control_points``, ``max_displacement``); ``dense``:
        Simard's smoothed random field (``alpha``, ``sigma``).
    control_points : int or list of int
        B-spline control points per axis.
    max_displacement : float or list of float
        B-spline: largest control-point displacement in mm (a range [a, b] draws it).
    alpha : float or [min, max]
        Dense: peak displacement in mm.
    sigma : float or [min, max]
        Dense: smoothness in mm.
    locked_borders : int
        B-spline: outer control-point layers held still.
    fold_guard : bool
        B-spline: cap the drawn displacement at 0.4 x the control-point spacing
        of the image at hand, the bound under which a cubic B-spline deformation
        cannot fold (Rueckert et al. 2006); the capped value is what the history
        records.  Matters for small fields of view.  When False, a larger value
        is used as drawn, with a warning.
    p : float
        Probability of applying.
    """

    kind: Literal["bspline", "dense"] = "bspline"
    control_points: Numbers = 7
    max_displacement: RangeLike = 7.0
    alpha: RangeLike = 5.0
    sigma: RangeLike = 10.0
    locked_borders: int = 1
    fold_guard: bool = True
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        if self.kind not in ("bspline", "dense"):
            raise ParameterError(f"RandomElastic 'kind' must be 'bspline' or 'dense', got {self.kind!r}")
        _check_control_points(self.control_points)
        self.locked_borders = count(self.locked_borders, "locked_borders", (0, 32))
        self._disp = Range("exact", bounds=DISPLACEMENT_MM, unit="mm").parse(self.max_displacement, "max_displacement")
        self._alpha = Range("exact", bounds=DISPLACEMENT_MM, unit="mm").parse(self.alpha, "alpha")
        self._sigma = Range("exact", bounds=SIGMA_MM, unit="mm").parse(self.sigma, "sigma")
        self.fold_guard = flag(self.fold_guard, "fold_guard")

    def sample(self, rng: np.random.Generator, ctx: Context) -> SpatialTransform:
        seed = int(rng.integers(0, 2**31 - 1))
        if self.kind == "dense":
            return ElasticDense(alpha=float(rng.uniform(*self._alpha)), sigma=float(rng.uniform(*self._sigma)), seed=seed)
        disp = float(rng.uniform(*self._disp))
        k = for_axes(self.control_points, ctx.ndim, "control_points")
        spacing = ctx.grid.extent / np.maximum(k - 1, 1)
        if disp > 0.4 * spacing.min() and self.fold_guard:
            disp = float(0.4 * spacing.min())
        elif disp > 0.4 * spacing.min():
            warnings.warn(
                f"RandomElastic: max_displacement {disp:.1f} mm exceeds 0.4 x the control-point spacing "
                f"({spacing.min():.1f} mm); the deformation may fold. Use fewer control points or a smaller displacement.",
                stacklevel=2,
            )
        return ElasticBSpline(
            control_points=self.control_points,
            max_displacement=disp,
            seed=seed,
            locked_borders=self.locked_borders,
        )
