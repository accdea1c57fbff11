"""The inverse of any recorded spatial transform, onto the grid it was applied on.

A spatial transform ``T`` applied on grid ``g`` has a pull-back ``W`` from its
output grid ``T.output_grid(g)`` to ``g``.  :class:`Inverse` undoes it: its
output grid is ``g`` and its pull-back is ``W⁻¹``, so the engine resamples the
output of ``T`` back onto ``g`` (once, fused with the other inverses of a history).

* Affine maps (rotations, flips, crops, pads, resampling, reorientation) are
  inverted exactly: a matrix inverse.
* Fields (elastic B-spline, dense elastic, radial distortion, learned
  deformations) are inverted numerically by :class:`~medaug.engine.warp.InverseWarp`:
  fixed-point iteration at the points of the coarse lattice the engine
  evaluates, to far below the engine's interpolation tolerance (0.1 voxel).
* A field that folds has no inverse: the Jacobian determinant of ``W`` is
  checked on a lattice of the output grid first, and a fold raises
  :class:`~medaug.errors.NotInvertibleError` naming where.

Examples
--------
>>> from medaug import Compose, shepp_logan_2d
>>> from medaug.spatial import Crop
>>> s = shepp_logan_2d(32)
>>> crop = Crop(start=[4, 4], size=[20, 24])
>>> back = Compose([undo(crop, s.grid)])(Compose([crop])(s))
>>> back.image.shape, bool((back.image.array[4:24, 4:28] == s.image.array[4:24, 4:28]).all())
((32, 32), True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.grid import Grid
from ..errors import NotInvertibleError, ParameterError
from .registry import transform_class
from .transform import SpatialTransform, Transform
from .warp import AffineWarp, InverseWarp, Warp

__all__ = ["Inverse", "undo", "rebuild", "min_jacobian"]

#: Lattice points per axis at most for the fold check.
_FOLD_LATTICE = 40


def rebuild(record: dict[str, Any]) -> Transform:
    """The deterministic transform of a history record ``{"name": ..., "params": {...}}``."""
    if not isinstance(record, dict) or not isinstance(record.get("name"), str):
        raise ParameterError(f"a transform record is {{'name': ..., 'params': {{...}}}}, got {record!r}")
    cls = transform_class(record["name"])
    if cls is None or not issubclass(cls, Transform):
        from .registry import unknown_name_hint

        raise ParameterError(
            f"history entry {record['name']!r} is not a known deterministic transform{unknown_name_hint(record['name'])}"
        )
    params = record.get("params", {})
    if not isinstance(params, dict):
        raise ParameterError(f"history entry {record['name']!r}: 'params' must be a mapping, got {params!r}")
    try:
        built = cls.from_params(params)
    except TypeError as exc:
        raise ParameterError(f"history entry {record['name']!r} has parameters this version does not know: {exc}") from None
    assert isinstance(built, Transform)
    return built


def undo(transform: SpatialTransform, grid: Grid | None) -> Transform:
    """The transform mapping ``transform``'s output back onto ``grid``, the grid it was applied on.

    The transform's own closed-form inverse when it has one (affines, flips),
    else an :class:`Inverse`.

    Raises
    ------
    ParameterError
        When an :class:`Inverse` is needed and ``grid`` is not known.
    """
    own = transform.inverse(grid)
    if own is not None:
        return own
    if grid is None:
        raise ParameterError(
            f"{type(transform).__name__} is undone onto the grid it was applied on, which this history does not "
            "record; pass a history written by medaug >= 0.2 (it starts with a 'run' entry holding the grid)"
        )
    return Inverse(transform=transform.record(), grid=grid.to_dict())


@dataclass
class Inverse(SpatialTransform):
    """Undo a recorded spatial transform: put its output back on the grid it was applied on.

    Parameters
    ----------
    transform : dict
        The record of the transform to undo, ``{"name": ..., "params": {...}}``.
    grid : dict
        The grid it was applied on (:meth:`~medaug.data.grid.Grid.to_dict`); the output grid.

    Raises
    ------
    NotInvertibleError
        When the transform's map folds (its Jacobian determinant is <= 0 somewhere).
    """

    transform: dict[str, Any]
    grid: dict[str, Any]

    def __post_init__(self) -> None:
        t = rebuild(self.transform)
        if not isinstance(t, SpatialTransform):
            raise ParameterError(f"Inverse undoes spatial transforms, not {type(t).__name__}")
        self.transform = t.record()
        self.grid = Grid.from_dict(self.grid).to_dict()

    def _target(self) -> tuple[SpatialTransform, Grid, Grid]:
        t = rebuild(self.transform)
        assert isinstance(t, SpatialTransform)
        before = Grid.from_dict(self.grid)
        return t, before, t.output_grid(before)

    def output_grid(self, grid: Grid) -> Grid:
        return Grid.from_dict(self.grid)

    def warp(self, grid_in: Grid, grid_out: Grid) -> Warp:
        t, before, after = self._target()
        w = t.warp(before, after)
        if w.is_affine:
            return AffineWarp(np.linalg.inv(w.affine_part()))
        det, where = min_jacobian(w, after)
        if det <= 0:
            raise NotInvertibleError(
                f"{type(t).__name__} cannot be inverted: it folds (Jacobian determinant {det:.3g} at "
                f"{np.round(where, 1).tolist()} mm), so some output voxels come from two places of the input; "
                f"{t.fold_hint}"
            )
        return InverseWarp(w)

    def inverse(self, grid: Grid | None = None) -> Transform | None:
        return rebuild(self.transform)

    def short(self) -> str:
        try:
            return "undo " + rebuild(self.transform).short()
        except ParameterError:  # pragma: no cover - checked when built
            return "undo"


def min_jacobian(warp: Warp, grid: Grid) -> tuple[float, np.ndarray]:
    """Smallest Jacobian determinant of ``warp`` on a lattice over ``grid``, and where (mm).

    Central differences at up to 40 points per axis, spaced at most a quarter
    of the warp's feature length (so a fold of the field cannot fall between
    two points) and at least one voxel.
    """
    n = grid.ndim
    size = np.asarray(grid.size_xyz, float)
    spacing = np.asarray(grid.spacing, float)
    step_vox = np.clip(warp.feature_mm / 4.0 / spacing, 1.0, None)
    counts = np.minimum(np.ceil((size - 1) / step_vox).astype(int) + 1, _FOLD_LATTICE)
    axes = [np.linspace(0.0, s - 1.0, int(c)) for s, c in zip(size, counts)]
    index = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, n)
    points = grid.index_to_physical(index)
    h = 0.25 * float(spacing.min())
    jac = np.empty((len(points), n, n))
    for k in range(n):
        e = np.zeros(n)
        e[k] = h
        jac[:, :, k] = (warp(points + e) - warp(points - e)) / (2.0 * h)
    det = np.linalg.det(jac)
    i = int(np.argmin(det))
    return float(det[i]), points[i]
