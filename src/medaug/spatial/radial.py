"""Radial (lens) distortion, Brown's model, about a centre in physical space."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.axes import physical_axis
from ..data.grid import Grid
from ..engine.ranges import BIG, Numbers, Range, RangeLike, number, numbers
from ..engine.transform import Context, RandomTransform, SpatialTransform
from ..engine.warp import FieldWarp
from ..errors import ParameterError
from ._axes import physical_extent
from .flip import Axes, _axes_list

#: The distortion coefficients (``r`` is normalised by ``radius``).
COEFFICIENT = Range("symmetric", bounds=(-1.0, 1.0))
#: Normalising radii in mm.
RADIUS_MM = (1.0, 1e4)

__all__ = ["RadialDistortion", "RandomRadialDistortion"]


@dataclass
class RadialDistortion(SpatialTransform):
    """Brown's radial distortion: ``p_u = p_d + (p_d - p_c)(k1 r² + k2 r⁴ + k3 r⁶)``.

    ``p_d`` is a point of the distorted output, ``p_u`` the undistorted input
    point it shows, ``r = |p_d - p_c| / radius``.  Positive ``k1`` gives barrel
    distortion (edges pulled in), negative gives pincushion.

    Parameters
    ----------
    k1, k2, k3 : float
        Coefficients (dimensionless, ``r`` normalised by ``radius``).
    center : list of float, optional
        Physical centre ``p_c`` in mm; the grid centre if omitted.
    radius : float, optional
        Normalising radius in mm; half the field of view's diagonal in the distortion plane if omitted.
    axes : list of str or int
        Physical axes of the distortion plane: ``LR``, ``AP``, ``SI`` or 0, 1, 2 (default LR and AP: endoscopy, C-arm).
    """

    k1: float = 0.0
    k2: float = 0.0
    k3: float = 0.0
    center: Numbers | None = None
    radius: float | None = None
    axes: Axes = (0, 1)

    fold_hint = "use smaller coefficients k1, k2, k3 (or a larger radius)"

    def __post_init__(self) -> None:
        for k in ("k1", "k2", "k3"):
            setattr(self, k, number(getattr(self, k), k, COEFFICIENT.bounds))
        if self.center is not None:
            numbers(self.center, "center", (-BIG, BIG), sizes=(2, 3), unit="mm")
        if self.radius is not None:
            self.radius = number(self.radius, "radius", RADIUS_MM, unit="mm")
        self.axes = _axes_list(self.axes)
        for a in self.axes:
            physical_axis(a, 3)

    def warp(self, grid_in: Grid, grid_out: Grid) -> FieldWarp:
        n = grid_out.ndim
        ax = sorted({physical_axis(a, n) for a in self.axes})
        if not ax:
            raise ParameterError("RadialDistortion 'axes' must name at least one axis")
        c = grid_out.center() if self.center is None else np.asarray(self.center, float)
        if c.shape != (n,):
            raise ParameterError(f"'center' needs {n} coordinates, got {np.shape(self.center)}")
        fov = physical_extent(grid_out)
        radius = float(self.radius) if self.radius else max(float(np.linalg.norm(fov[ax]) / 2.0), RADIUS_MM[0])
        if np.linalg.norm(c - grid_out.center()) > 2.0 * float(np.linalg.norm(fov)):
            raise ParameterError(
                f"RadialDistortion 'center' {np.round(c, 1).tolist()} mm lies far outside the field of view "
                f"(centre {np.round(grid_out.center(), 1).tolist()} mm); put it within two diagonals of it"
            )
        k1, k2, k3 = float(self.k1), float(self.k2), float(self.k3)

        def displacement(points: np.ndarray) -> np.ndarray:
            d = np.zeros_like(points)
            rel = points[:, ax] - c[ax]
            r2 = (rel**2).sum(1, keepdims=True) / radius**2
            d[:, ax] = rel * (k1 * r2 + k2 * r2**2 + k3 * r2**3)
            return d

        bound = radius * (abs(k1) + abs(k2) + abs(k3))
        return FieldWarp(displacement, n, radius / 4.0, bound)

    def short(self) -> str:
        return f"radial k1 {self.k1:+.2f}"


@dataclass
class RandomRadialDistortion(RandomTransform):
    """Random lens distortion.

    Parameters
    ----------
    k1, k2, k3 : float or [min, max]
        Ranges of the coefficients (``d`` means (-d, d)).
    center_shift : float
        Random shift of the centre, as a fraction of the field of view along each physical axis, in [0, 0.5].
    axes : list of str or int
        Physical axes of the distortion plane.
    p : float
        Probability of applying.
    """

    k1: RangeLike = 0.1
    k2: RangeLike = 0.0
    k3: RangeLike = 0.0
    center_shift: float = 0.0
    axes: Axes = (0, 1)
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        self._k = [COEFFICIENT.parse(getattr(self, k), k) for k in ("k1", "k2", "k3")]
        self.center_shift = number(self.center_shift, "center_shift", (0.0, 0.5))
        self.axes = _axes_list(self.axes)
        for a in self.axes:
            physical_axis(a, 3)

    def sample(self, rng: np.random.Generator, ctx: Context) -> RadialDistortion:
        k = [float(rng.uniform(lo, hi)) for lo, hi in self._k]
        center = None
        if self.center_shift:
            shift = rng.uniform(-self.center_shift, self.center_shift, ctx.ndim) * physical_extent(ctx.grid)
            center = (ctx.grid.center() + shift).tolist()
        return RadialDistortion(k1=k[0], k2=k[1], k3=k[2], center=center, axes=self.axes)
