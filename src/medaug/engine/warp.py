"""Coordinate maps from output physical space to input physical space.

Every spatial transform contributes one :class:`Warp`: a *pull-back* that takes
a physical point of its output and returns the physical point of its input
whose value lands there.  :func:`compose` chains the warps of a pipeline
(affines multiplied into one matrix, fields kept as functions), so the engine
can evaluate the whole chain at any point and resample once.  Points and boxes
travel the other way (:meth:`Warp.forward`), by inverting the pull-back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..data.grid import apply_homogeneous

__all__ = ["Warp", "AffineWarp", "FieldWarp", "ChainWarp", "InverseWarp", "compose", "solve"]


class Warp:
    """A pull-back map ``x_in = W(x_out)`` on physical points of shape (N, ndim)."""

    ndim: int

    def __call__(self, points: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def forward(self, points: np.ndarray) -> np.ndarray:
        """Map input points to output points (the inverse of the pull-back)."""
        return solve(self, np.asarray(points, float))[0]

    def affine_part(self) -> np.ndarray:
        """The affine member of the map (the identity for a field alone)."""
        return np.eye(self.ndim + 1)

    @property
    def is_affine(self) -> bool:
        return False

    @property
    def feature_mm(self) -> float:
        """Smallest physical length over which the map bends (inf for affines)."""
        return np.inf


@dataclass(frozen=True)
class AffineWarp(Warp):
    """``x_in = A[:n, :n] @ x_out + A[:n, n]`` with a homogeneous matrix ``A``."""

    matrix: np.ndarray

    @property
    def ndim(self) -> int:  # type: ignore[override]
        return self.matrix.shape[0] - 1

    def __call__(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, float)
        return apply_homogeneous(p, self.matrix)

    def forward(self, points: np.ndarray) -> np.ndarray:
        return AffineWarp(np.linalg.inv(self.matrix))(points)

    @property
    def is_affine(self) -> bool:
        return True

    def affine_part(self) -> np.ndarray:
        return self.matrix

    @staticmethod
    def identity(ndim: int) -> AffineWarp:
        return AffineWarp(np.eye(ndim + 1))


@dataclass(frozen=True)
class FieldWarp(Warp):
    """``x_in = x_out + u(x_out)`` for a smooth displacement ``u`` given as a function.

    Parameters
    ----------
    displacement : callable
        Maps (N, ndim) physical points to (N, ndim) displacements in mm.
    ndim : int
        Dimensionality of the points.
    feature : float
        Length scale of the field (e.g. the B-spline control spacing), used by
        the engine to choose how densely to evaluate it.
    max_displacement_mm : float
        Bound on ``|u|``, used to set tolerances and iteration counts.
    """

    displacement: Callable[[np.ndarray], np.ndarray]
    ndim: int
    feature: float
    max_displacement_mm: float = field(default=0.0)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, float)
        return p + self.displacement(p)

    @property
    def feature_mm(self) -> float:
        return self.feature


@dataclass(frozen=True)
class ChainWarp(Warp):
    """Warps applied right to left: ``W = warps[0] ∘ warps[1] ∘ ...``."""

    warps: tuple[Warp, ...]

    @property
    def ndim(self) -> int:  # type: ignore[override]
        return self.warps[0].ndim

    def __call__(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, float)
        for w in reversed(self.warps):
            p = w(p)
        return p

    def forward(self, points: np.ndarray) -> np.ndarray:
        p = np.asarray(points, float)
        for w in self.warps:
            p = w.forward(p)
        return p

    @property
    def is_affine(self) -> bool:
        return all(w.is_affine for w in self.warps)

    @property
    def feature_mm(self) -> float:
        return min(w.feature_mm for w in self.warps)

    def affine_part(self) -> np.ndarray:
        """The product of the affine members, fields taken as identity."""
        m = np.eye(self.ndim + 1)
        for w in self.warps:
            m = m @ w.affine_part()
        return m


def compose(warps: Sequence[Warp]) -> ChainWarp:
    """Chain pull-backs listed in pipeline order (first transform first).

    The pipeline applies T1 then T2, so the pull-back is ``W1 ∘ W2``: a point of
    the final output goes through W2's map first.  Adjacent affines are
    multiplied into one matrix.
    """
    merged: list[Warp] = []
    for w in warps:
        if isinstance(w, ChainWarp):
            items: Sequence[Warp] = w.warps
        else:
            items = (w,)
        for item in items:
            if merged and isinstance(item, AffineWarp) and isinstance(merged[-1], AffineWarp):
                merged[-1] = AffineWarp(merged[-1].matrix @ item.matrix)
            else:
                merged.append(item)
    return ChainWarp(tuple(merged))


def solve(warp: Warp, targets: np.ndarray, iterations: int = 100, tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``warp(x) = targets`` by fixed-point iteration preconditioned with the affine part's inverse.

    With ``warp(x) = A(x + u(x))`` the iteration ``x <- x + A⁻¹(t - warp(x))``
    is ``x <- A⁻¹t - u(x)``: it converges where ``u`` is a contraction
    (``|∇u| < 1``), which holds for the fold-free fields medaug draws.

    Returns
    -------
    (ndarray, ndarray)
        The solutions (N, ndim) and the remaining residual ``|warp(x) - t|`` per point, in mm.
    """
    if targets.size == 0:
        return targets.copy(), np.zeros(len(targets))
    inv = np.linalg.inv(warp.affine_part())
    with np.errstate(over="ignore", invalid="ignore"):  # a diverging point (a fold) keeps a large residual
        x = apply_homogeneous(targets, inv)
        residual = targets - warp(x)
        for _ in range(iterations):
            x = x + residual @ np.ascontiguousarray(inv[:-1, :-1].T)
            residual = targets - warp(x)
            if not np.abs(residual).max() >= tol:  # below tol, or NaN: stop
                break
        norm = np.linalg.norm(residual, axis=1)
    return x, np.where(np.isfinite(norm), norm, np.inf)


@dataclass(frozen=True)
class InverseWarp(Warp):
    """The inverse of a pull-back ``of``: ``x_in = of⁻¹(x_out)``.

    Evaluated by :func:`solve` (fixed-point iteration) wherever the engine asks,
    i.e. on the coarse lattice of the output grid; its :meth:`forward` is ``of``
    itself, exact.  Points where the iteration does not converge to ``tol_mm``
    raise :class:`~medaug.errors.NotInvertibleError` (the map folds or is too
    strong to invert there).
    """

    of: Warp
    tol_mm: float = 1e-3

    @property
    def ndim(self) -> int:  # type: ignore[override]
        return self.of.ndim

    def __call__(self, points: np.ndarray) -> np.ndarray:
        x, residual = solve(self.of, np.asarray(points, float))
        if residual.size and residual.max() > self.tol_mm:
            from ..errors import NotInvertibleError

            k = int(residual.argmax())
            raise NotInvertibleError(
                f"the inverse of this deformation does not converge at {np.round(points[k], 2).tolist()} mm "
                f"(residual {residual[k]:.3g} mm): the map folds or is too strong to invert there"
            )
        return x

    def forward(self, points: np.ndarray) -> np.ndarray:
        return self.of(np.asarray(points, float))

    def affine_part(self) -> np.ndarray:
        return np.linalg.inv(self.of.affine_part())

    @property
    def feature_mm(self) -> float:
        return self.of.feature_mm
