"""Affine transforms in physical space: rotation, scaling, shear, translation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.grid import Grid
from ..engine.transform import Context, RandomTransform, SpatialTransform, per_axis_range
from ..engine.warp import AffineWarp
from ..errors import ParameterError
from ._axes import about_point, rotation_matrix

__all__ = ["Affine", "RandomAffine", "RandomRotation", "RandomTranslation", "RandomZoom", "RandomShear"]


def _vec(value: Any, ndim: int, name: str, default: float) -> np.ndarray:
    if value is None:
        return np.full(ndim, default, float)
    arr = np.atleast_1d(np.asarray(value, float))
    if arr.size == 1:
        return np.full(ndim, float(arr[0]))
    if arr.size != ndim:
        raise ParameterError(f"'{name}' needs 1 or {ndim} values for a {ndim}D image, got {arr.size}")
    return arr


@dataclass
class Affine(SpatialTransform):
    """Move image content by ``y = R S H (x - c) + c + t`` in physical space.

    Parameters
    ----------
    rotation : float or list of float
        Degrees: one angle in 2D; angles about the x, y, z physical axes in 3D.
    scale : float or list of float
        Zoom per physical axis (x, y, z); > 1 enlarges the content.
    shear : list of float
        Off-diagonal factors of ``H``: (xy, yx) in 2D; (xy, xz, yx, yz, zx, zy) in 3D.
    translation : float or list of float
        Shift in mm per physical axis (x, y, z).
    center : list of float, optional
        Physical centre of rotation and scaling (mm); the grid centre if omitted.

    Notes
    -----
    The content moves forward by the map above; the engine samples with its
    inverse, so a landmark at ``x`` lands at ``y``.
    """

    rotation: Any = 0.0
    scale: Any = 1.0
    shear: Any = None
    translation: Any = 0.0
    center: Any = None

    def forward_matrix(self, grid: Grid) -> np.ndarray:
        n = grid.ndim
        rot = np.atleast_1d(np.asarray(self.rotation, float))
        if n == 2 and rot.size != 1:
            raise ParameterError(f"'rotation' takes one angle in 2D, got {rot.tolist()}")
        if n == 3 and rot.size == 1:
            rot = np.full(3, rot[0])
        if n == 3 and rot.size != 3:
            raise ParameterError(f"'rotation' takes 1 or 3 angles in 3D, got {rot.tolist()}")
        scale = _vec(self.scale, n, "scale", 1.0)
        if (scale <= 0).any():
            raise ParameterError(f"'scale' must be positive, got {scale.tolist()}")
        shear = np.eye(n)
        if self.shear is not None:
            sh = np.atleast_1d(np.asarray(self.shear, float))
            if sh.size == 1:
                sh = np.full(n * (n - 1), sh[0])
            if sh.size != n * (n - 1):
                raise ParameterError(f"'shear' needs {n * (n - 1)} values in {n}D, got {sh.size}")
            off = [(i, j) for i in range(n) for j in range(n) if i != j]
            for (i, j), v in zip(off, sh):
                shear[i, j] = v
        linear = rotation_matrix(rot) @ np.diag(scale) @ shear
        center = grid.center() if self.center is None else _vec(self.center, n, "center", 0.0)
        return about_point(linear, center, _vec(self.translation, n, "translation", 0.0))

    def warp(self, grid_in: Grid, grid_out: Grid) -> AffineWarp:
        return AffineWarp(np.linalg.inv(self.forward_matrix(grid_in)))

    def inverse(self) -> SpatialTransform:
        return AffineMatrix(matrix=None, inverse_of=self.config_params())

    def short(self) -> str:
        parts = []
        rot = np.atleast_1d(np.asarray(self.rotation, float))
        if np.any(rot):
            parts.append("rot " + "/".join(f"{r:.1f}" for r in rot) + "°")
        sc = np.atleast_1d(np.asarray(self.scale, float))
        if np.any(sc != 1):
            parts.append("scale " + "/".join(f"{s:.2f}" for s in sc))
        tr = np.atleast_1d(np.asarray(self.translation, float))
        if np.any(tr):
            parts.append("shift " + "/".join(f"{t:.1f}" for t in tr) + "mm")
        if self.shear is not None and np.any(self.shear):
            parts.append("shear")
        return ", ".join(parts) or "affine id"


@dataclass
class AffineMatrix(SpatialTransform):
    """An explicit forward matrix (homogeneous, physical mm), or the inverse of an :class:`Affine`.

    Parameters
    ----------
    matrix : list of list of float, optional
        The forward map ``y = M x`` on physical points.
    inverse_of : dict, optional
        Parameters of an :class:`Affine` to undo (resolved against the grid it was applied on).
    """

    matrix: Any = None
    inverse_of: Any = None

    def warp(self, grid_in: Grid, grid_out: Grid) -> AffineWarp:
        if self.inverse_of is not None:
            return AffineWarp(Affine(**self.inverse_of).forward_matrix(grid_in))
        if self.matrix is None:
            raise ParameterError("AffineMatrix needs 'matrix' or 'inverse_of'")
        m = np.asarray(self.matrix, float)
        if m.shape != (grid_in.ndim + 1, grid_in.ndim + 1):
            raise ParameterError(f"'matrix' must be {grid_in.ndim + 1}x{grid_in.ndim + 1}, got {m.shape}")
        return AffineWarp(np.linalg.inv(m))

    def inverse(self) -> SpatialTransform:
        if self.inverse_of is not None:
            return Affine(**self.inverse_of)
        return AffineMatrix(matrix=np.linalg.inv(np.asarray(self.matrix, float)).tolist())


@dataclass
class RandomAffine(RandomTransform):
    """Random rotation, scaling, shear and translation in physical space.

    Parameters
    ----------
    rotation : float or list
        Degrees; ``d`` means uniform in (-d, d), per axis in 3D (or one range per axis).
    scale : float or list
        ``s`` means (1 - s, 1 + s) when s < 1, a pair [a, b] is taken as is; one per axis allowed.
    isotropic : bool
        One scale factor for all axes (zoom) instead of one per axis (stretch).
    shear : float or list
        Range of the shear factors.
    translation : float or list
        Shift in mm; ``d`` means (-d, d) per axis.
    translation_fraction : float or list, optional
        Shift as a fraction of the field of view per axis, added to ``translation``.
    center : list of float, optional
        Physical centre (mm); the grid centre if omitted.
    p : float
        Probability of applying.
    """

    rotation: Any = 0.0
    scale: Any = 0.0
    isotropic: bool = False
    shear: Any = 0.0
    translation: Any = 0.0
    translation_fraction: Any = 0.0
    center: Any = None
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        for ndim in (2, 3):  # validate early, for both dimensionalities
            self._ranges(ndim)

    def _ranges(self, ndim: int) -> dict[str, list[tuple[float, float]]]:
        nrot = 1 if ndim == 2 else 3
        scale = self.scale
        if isinstance(scale, (int, float)) and not isinstance(scale, bool):
            if not 0 <= scale < 1:
                raise ParameterError(f"'scale': a single number s means (1 - s, 1 + s) and must be in [0, 1), got {scale}")
        return {
            "rotation": per_axis_range(self.rotation, "rotation", nrot),
            "scale": per_axis_range(scale, "scale", ndim, around=1.0, min_value=1e-3),
            "shear": per_axis_range(self.shear, "shear", ndim * (ndim - 1)),
            "translation": per_axis_range(self.translation, "translation", ndim),
            "translation_fraction": per_axis_range(self.translation_fraction, "translation_fraction", ndim),
        }

    def sample(self, rng: np.random.Generator, ctx: Context) -> Affine:
        n = ctx.ndim
        r = self._ranges(n)

        def draw(key: str) -> np.ndarray:
            return np.array([rng.uniform(lo, hi) for lo, hi in r[key]])

        rotation = draw("rotation")
        scale = draw("scale")
        if self.isotropic:
            scale[:] = scale[0]
        shear = draw("shear")
        translation = draw("translation") + draw("translation_fraction") * ctx.grid.extent
        return Affine(
            rotation=float(rotation[0]) if n == 2 else rotation.tolist(),
            scale=scale.tolist(),
            shear=shear.tolist() if np.any(shear) else None,
            translation=translation.tolist(),
            center=self.center,
        )


@dataclass
class RandomRotation(RandomAffine):
    """Random rotation only (degrees, about the grid centre or ``center``)."""


@dataclass
class RandomTranslation(RandomAffine):
    """Random translation only: ``translation`` in mm and/or ``translation_fraction`` of the field of view."""


@dataclass
class RandomZoom(RandomAffine):
    """Random isotropic zoom: ``scale`` range, one factor for every axis."""

    isotropic: bool = True


@dataclass
class RandomShear(RandomAffine):
    """Random shear only."""
