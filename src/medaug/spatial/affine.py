"""Affine transforms in physical space: rotation, scaling, shear, translation.

Axes are the patient's physical axes in (x, y, z) = (LR, AP, SI) order
(:mod:`medaug.data.axes`), whatever the image's direction cosines.  In 3D the
rotation is ``R = Rz · Ry · Rx``: about LR first, then AP, then SI, each
right-handed about the fixed patient axes; in 2D the one angle turns x
towards y (about SI).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.grid import Grid
from ..engine.ranges import BIG, Numbers, PerAxisRange, Range, flag, for_axes, numbers, warn_if_radians
from ..engine.transform import Context, RandomTransform, SpatialTransform
from ..engine.warp import AffineWarp
from ..errors import ParameterError
from ._axes import about_point, physical_extent, rotation_matrix

__all__ = ["Affine", "AffineMatrix", "RandomAffine", "RandomRotation", "RandomTranslation", "RandomScale", "RandomShear"]

#: Degrees; one full turn either way.
ROTATION = Range("symmetric", bounds=(-360.0, 360.0), unit="degrees")
#: Factors; ``s`` means (1 - s, 1 + s).
SCALE = Range("symmetric", anchor=1.0, bounds=(0.05, 20.0))
SHEAR = Range("symmetric", bounds=(-5.0, 5.0))
#: mm; 10 m either way.
TRANSLATION = Range("symmetric", bounds=(-1e4, 1e4), unit="mm")
#: Fractions of the field of view.
FRACTION = Range("symmetric", bounds=(-1.0, 1.0))


@dataclass
class Affine(SpatialTransform):
    """Move image content by ``y = R S H (x - c) + c + t`` in physical space.

    Parameters
    ----------
    rotation : float or list of float
        Degrees.  2D: one angle (x towards y).  3D: one angle for every axis or
        three, about LR (x), AP (y) and SI (z), composed as ``R = Rz · Ry · Rx``
        (about LR first), right-handed about the fixed patient axes.
    scale : float or list of float
        Factor per physical axis (x, y, z); > 1 enlarges the content.
    shear : float or list of float, optional
        Off-diagonal factors of ``H``: (xy, yx) in 2D; (xy, xz, yx, yz, zx, zy) in 3D.
    translation : float or list of float
        Shift in mm per physical axis (x, y, z).
    center : list of float, optional
        Physical centre of rotation and scaling (mm, x/y/z); the grid centre if omitted.

    Notes
    -----
    The content moves forward by the map above; the engine samples with its
    inverse, so a landmark at ``x`` lands at ``y``.
    """

    rotation: Numbers = 0.0
    scale: Numbers = 1.0
    shear: Numbers | None = None
    translation: Numbers = 0.0
    center: Numbers | None = None

    def __post_init__(self) -> None:
        numbers(self.rotation, "rotation", ROTATION.bounds, sizes=(1, 3), unit="degrees")
        numbers(self.scale, "scale", SCALE.bounds, sizes=(1, 2, 3))
        if self.shear is not None:
            numbers(self.shear, "shear", SHEAR.bounds, sizes=(1, 2, 6))
        numbers(self.translation, "translation", TRANSLATION.bounds, sizes=(1, 2, 3), unit="mm")
        if self.center is not None:
            numbers(self.center, "center", (-BIG, BIG), sizes=(2, 3), unit="mm")

    def forward_matrix(self, grid: Grid) -> np.ndarray:
        n = grid.ndim
        rot = np.atleast_1d(np.asarray(self.rotation, float))
        if n == 2 and rot.size != 1:
            raise ParameterError(f"'rotation' takes one angle in 2D, got {rot.tolist()}")
        if n == 3 and rot.size == 1:
            rot = np.full(3, rot[0])
        scale = for_axes(self.scale, n, "scale")
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
        if abs(np.linalg.det(linear)) < 1e-6:
            raise ParameterError(f"Affine with shear {self.shear} and scale {self.scale} is singular (it flattens the image)")
        center = grid.center() if self.center is None else for_axes(self.center, n, "center")
        return about_point(linear, center, for_axes(self.translation, n, "translation"))

    def warp(self, grid_in: Grid, grid_out: Grid) -> AffineWarp:
        return AffineWarp(np.linalg.inv(self.forward_matrix(grid_in)))

    def inverse(self, grid: Grid | None = None) -> SpatialTransform:
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
        The forward map ``y = M x`` on physical points, (ndim + 1) x (ndim + 1),
        last row ``[0, ..., 0, 1]``, invertible.
    inverse_of : dict, optional
        Parameters of an :class:`Affine` to undo (resolved against the grid it was applied on).
    """

    matrix: list[list[float]] | None = None
    inverse_of: dict[str, object] | None = None

    def __post_init__(self) -> None:
        if (self.matrix is None) == (self.inverse_of is None):
            raise ParameterError("AffineMatrix needs exactly one of 'matrix' or 'inverse_of'")
        if self.inverse_of is not None:
            if not isinstance(self.inverse_of, dict):
                raise ParameterError(f"AffineMatrix 'inverse_of' must be the parameters of an Affine, got {self.inverse_of!r}")
            Affine(**self.inverse_of)  # type: ignore[arg-type]
            return
        m = _checked_matrix(self.matrix)
        self.matrix = m.tolist()

    def warp(self, grid_in: Grid, grid_out: Grid) -> AffineWarp:
        if self.inverse_of is not None:
            return AffineWarp(Affine(**self.inverse_of).forward_matrix(grid_in))  # type: ignore[arg-type]
        m = np.asarray(self.matrix, float)
        if m.shape != (grid_in.ndim + 1, grid_in.ndim + 1):
            raise ParameterError(f"'matrix' must be {grid_in.ndim + 1}x{grid_in.ndim + 1} for a {grid_in.ndim}D image, got {m.shape}")
        return AffineWarp(np.linalg.inv(m))

    def inverse(self, grid: Grid | None = None) -> SpatialTransform:
        if self.inverse_of is not None:
            return Affine(**self.inverse_of)  # type: ignore[arg-type]
        return AffineMatrix(matrix=np.linalg.inv(np.asarray(self.matrix, float)).tolist())


def _checked_matrix(matrix: object) -> np.ndarray:
    try:
        m = np.asarray(matrix, float)
    except (TypeError, ValueError, OverflowError):
        raise ParameterError(f"'matrix' must be a square list of lists of numbers, got {matrix!r}") from None
    if m.ndim != 2 or m.shape not in ((3, 3), (4, 4)):
        raise ParameterError(f"'matrix' must be 3x3 (2D) or 4x4 (3D) homogeneous, got shape {m.shape}")
    if not np.isfinite(m).all() or np.abs(m).max() > 1e6:
        raise ParameterError("'matrix' must hold finite numbers of magnitude <= 1e6")
    n = m.shape[0] - 1
    if not np.allclose(m[n], np.eye(n + 1)[n]):
        raise ParameterError(f"'matrix' must end with the row {np.eye(n + 1)[n].tolist()}, got {m[n].tolist()}")
    lin = m[:n, :n]
    sv = np.linalg.svd(lin, compute_uv=False)
    if sv.min() < 1e-6 * max(sv.max(), 1.0) or sv.min() < 1e-3:
        raise ParameterError(
            f"'matrix' is singular or nearly so (singular values {np.round(sv, 6).tolist()}): it cannot map an image "
            "onto a volume; give an invertible matrix"
        )
    return m


@dataclass
class RandomAffine(RandomTransform):
    """Random rotation, scaling, shear and translation in physical space.

    Per-axis values are listed in physical (x, y, z) = (LR, AP, SI) order and
    the drawn rotation is applied as ``R = Rz · Ry · Rx`` (see :class:`Affine`).

    Parameters
    ----------
    rotation : float or list
        Degrees; ``d`` means uniform in (-d, d).  In 3D one range for all three
        axes, or one per axis: ``[0, 0, 15]`` turns only about SI, by up to 15°.
        In 2D one range (about SI).
    scale : float or list
        ``s`` means (1 - s, 1 + s); a pair [a, b] is taken as is; one per axis allowed.
    isotropic : bool
        One scale factor for all axes (zoom) instead of one per axis (stretch).
    shear : float or list
        Range of the shear factors (one, or one per factor: 2 in 2D, 6 in 3D).
    translation : float or list
        Shift in mm; ``d`` means (-d, d), for every axis or one per axis.
    translation_fraction : float or list, optional
        Shift as a fraction of the field of view's length along each physical
        axis (e.g. 0.05 of the LR extent along LR), added to ``translation``.
    center : list of float, optional
        Physical centre (mm); the grid centre if omitted.
    p : float
        Probability of applying.

    Examples
    --------
    >>> from medaug import shepp_logan_3d
    >>> out = RandomAffine(rotation=[0, 0, 15])(shepp_logan_3d(24), seed=0)
    >>> rx, ry, rz = out.history[1]["params"]["rotation"]
    >>> rx == ry == 0.0 and abs(rz) <= 15
    True
    """

    rotation: PerAxisRange = 0.0
    scale: PerAxisRange = 0.0
    isotropic: bool = False
    shear: PerAxisRange = 0.0
    translation: PerAxisRange = 0.0
    translation_fraction: PerAxisRange = 0.0
    center: Numbers | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        # validated now for every dimensionality a value fits (3 rotation ranges fit 3D only)
        ROTATION.check_axes(self.rotation, "rotation", (1, 3))
        warn_if_radians(self.rotation, "rotation", type(self).__name__)
        SCALE.check_axes(self.scale, "scale", (2, 3))
        SHEAR.check_axes(self.shear, "shear", (2, 6))
        TRANSLATION.check_axes(self.translation, "translation", (2, 3))
        FRACTION.check_axes(self.translation_fraction, "translation_fraction", (2, 3))
        if self.center is not None:
            numbers(self.center, "center", (-BIG, BIG), sizes=(2, 3), unit="mm")
        self.isotropic = flag(self.isotropic, "isotropic")

    def _ranges(self, ndim: int) -> dict[str, list[tuple[float, float]]]:
        return {
            "rotation": ROTATION.per_axis(self.rotation, "rotation", 1 if ndim == 2 else 3),
            "scale": SCALE.per_axis(self.scale, "scale", ndim),
            "shear": SHEAR.per_axis(self.shear, "shear", ndim * (ndim - 1)),
            "translation": TRANSLATION.per_axis(self.translation, "translation", ndim),
            "translation_fraction": FRACTION.per_axis(self.translation_fraction, "translation_fraction", ndim),
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
        translation = draw("translation") + draw("translation_fraction") * physical_extent(ctx.grid)
        return Affine(
            rotation=float(rotation[0]) if n == 2 else rotation.tolist(),
            scale=scale.tolist(),
            shear=shear.tolist() if np.any(shear) else None,
            translation=np.clip(translation, *TRANSLATION.bounds).tolist(),
            center=self.center,
        )


@dataclass
class RandomRotation(RandomAffine):
    """Random rotation only (degrees, about the grid centre or ``center``; see :class:`RandomAffine`)."""


@dataclass
class RandomTranslation(RandomAffine):
    """Random translation only: ``translation`` in mm and/or ``translation_fraction`` of the field of view."""


@dataclass
class RandomScale(RandomAffine):
    """Random isotropic scaling of the content (an affine zoom about the centre): ``scale`` range, one factor.

    The grid is unchanged; to change the number of voxels use
    :class:`~medaug.spatial.preprocess.Resize` or :class:`~medaug.spatial.resample.Resample`.
    """

    renamed_from = ("RandomZoom",)

    isotropic: bool = True


@dataclass
class RandomShear(RandomAffine):
    """Random shear only."""
