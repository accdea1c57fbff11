"""Cubic B-spline evaluation of a coarse control grid at arbitrary points.

Equivalent to ``scipy.ndimage.map_coordinates(coef, u, order=3, prefilter=False,
mode="grid-constant")`` for each component (coefficients outside the grid are
zero).  A Numba kernel does it ~20x faster for the few hundred thousand lattice
points the engine asks for; SciPy is the fallback and the reference in tests.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import map_coordinates

__all__ = ["evaluate", "evaluate_scipy"]


def evaluate_scipy(coef: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``coef``: (C, k1, ..., kn) coefficients; ``u``: (N, n) continuous control indices → (N, C)."""
    return np.stack(
        [map_coordinates(coef[c], u.T, order=3, mode="grid-constant", cval=0.0, prefilter=False) for c in range(coef.shape[0])],
        axis=1,
    )


#: Points from which the lattice is evaluated on every thread (below it a parallel launch costs more than it saves).
PARALLEL_POINTS = 20_000

try:  # pragma: no branch
    from numba import njit, prange

    from ..engine._jit import cache_kernels

    @njit(cache=cache_kernels())
    def _eval3(coef, u, out):
        nc, kx, ky, kz = coef.shape
        for p in range(u.shape[0]):
            wa = np.empty((3, 4))
            base = np.empty(3, np.int64)
            for a in range(3):
                f = np.floor(u[p, a])
                t = u[p, a] - f
                base[a] = int(f) - 1
                t2 = t * t
                t3 = t2 * t
                wa[a, 0] = (1.0 - t) ** 3 / 6.0
                wa[a, 1] = (3.0 * t3 - 6.0 * t2 + 4.0) / 6.0
                wa[a, 2] = (-3.0 * t3 + 3.0 * t2 + 3.0 * t + 1.0) / 6.0
                wa[a, 3] = t3 / 6.0
            for c in range(nc):
                s = 0.0
                for i in range(4):
                    ii = base[0] + i
                    if ii < 0 or ii >= kx:
                        continue
                    for j in range(4):
                        jj = base[1] + j
                        if jj < 0 or jj >= ky:
                            continue
                        wij = wa[0, i] * wa[1, j]
                        for k in range(4):
                            kk = base[2] + k
                            if 0 <= kk < kz:
                                s += wij * wa[2, k] * coef[c, ii, jj, kk]
                out[p, c] = s

    @njit(cache=cache_kernels(), parallel=True)
    def _eval3_parallel(coef, u, out):
        """:func:`_eval3` over contiguous chunks of the points, on every thread."""
        n = u.shape[0]
        chunks = 64
        for c in prange(chunks):
            a = n * c // chunks
            b = n * (c + 1) // chunks
            _eval3(coef, u[a:b], out[a:b])

    _HAVE_NUMBA = True
except Exception:  # pragma: no cover - numba missing
    _HAVE_NUMBA = False


def evaluate(coef: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Cubic B-spline of ``coef`` (C, k1..kn) at control indices ``u`` (N, n) → (N, C)."""
    from ..engine.resample import numba_available

    if not (_HAVE_NUMBA and numba_available()):
        return evaluate_scipy(coef, u)
    n = u.shape[1]
    # 2D: three identical layers evaluated at the middle one have B-spline weights summing to 1
    c3 = coef if n == 3 else np.repeat(coef[..., None], 3, axis=-1)
    u3 = u if n == 3 else np.concatenate([u, np.ones((u.shape[0], 1))], axis=1)
    out = np.empty((u.shape[0], coef.shape[0]))
    kernel = _eval3_parallel if u.shape[0] >= PARALLEL_POINTS else _eval3
    kernel(np.ascontiguousarray(c3, np.float64), np.ascontiguousarray(u3, np.float64), out)
    return out
