"""Geometry between medaug (ITK/LPS, arrays z, y, x) and affine-based libraries (MONAI, TorchIO, NiBabel).

medaug stores an image as an array in (z, y, x) order with spacing, origin and
direction in ITK's LPS patient coordinates (see :class:`~medaug.data.grid.Grid`).
MONAI and TorchIO store the *channel-less* spatial array in NiBabel's index order
``(i, j, k) = (x, y, z)`` (the reverse of medaug's) and one homogeneous affine
mapping ``(i, j, k)`` to world millimetres, in RAS by default (MONAI records
the space in ``meta["space"]``; it may be ``"LPS"``).  LPS and RAS differ by
the sign of the first two world axes, in 2D as in 3D, so::

    affine_RAS = diag(-1, -1, 1, 1) @ grid.index_to_physical_matrix()

A 2D image in those libraries usually carries a 4x4 affine (a NIfTI file
read by NiBabel, or TorchIO's ``(C, W, H, 1)`` tensors); its in-plane part is
the 2D grid, the rest (the slice position) is kept as it was.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..data.grid import Grid
from ..errors import GeometryError, InvalidImageError, ParameterError

__all__ = ["affine_from_grid", "grid_from_affine", "embed_affine", "is_in_plane", "SPACES"]

#: World coordinate systems an affine may use.
SPACES = ("RAS", "LPS")


def _space(space: str) -> str:
    s = str(getattr(space, "value", space)).upper()
    if s not in SPACES:
        raise ParameterError(f"unknown world space {space!r}; expected one of {', '.join(SPACES)}")
    return s


def _flip(n: int) -> np.ndarray:
    """Homogeneous (n+1)x(n+1) matrix negating the first two world axes (LPS <-> RAS)."""
    f = np.eye(n + 1)
    f[0, 0] = f[1, 1] = -1.0
    return f


def affine_from_grid(grid: Grid, space: str = "RAS") -> np.ndarray:
    """The ``(ndim+1) x (ndim+1)`` affine of ``grid`` for arrays in (x, y, z) index order.

    Parameters
    ----------
    grid : Grid
        A medaug grid.
    space : {"RAS", "LPS"}
        World coordinates of the result (MONAI and TorchIO use RAS).

    Examples
    --------
    >>> from medaug import Grid
    >>> a = affine_from_grid(Grid((4, 5, 6), spacing=(1, 2, 3), origin=(10, 20, 30)))
    >>> a.diagonal().tolist(), a[:3, 3].tolist()
    ([-1.0, -2.0, 3.0, 1.0], [-10.0, -20.0, 30.0])
    """
    m = grid.index_to_physical_matrix()
    return _flip(grid.ndim) @ m if _space(space) == "RAS" else m


def is_in_plane(affine: np.ndarray, ndim: int = 2, *, atol: float = 1e-4) -> bool:
    """True when the first ``ndim`` index axes of ``affine`` have no component along the other world axes."""
    a = np.asarray(affine, float)
    r = a.shape[0] - 1
    if r <= ndim:
        return r == ndim
    cols = a[:r, :ndim]
    scale = np.linalg.norm(cols, axis=0).max()
    return bool(np.allclose(cols[ndim:], 0.0, atol=atol * max(scale, 1.0)))


def grid_from_affine(
    affine: np.ndarray | Sequence[Sequence[float]],
    spatial_shape: Sequence[int],
    space: str = "RAS",
    *,
    what: str = "image",
) -> Grid:
    """The medaug grid of an array whose spatial axes are in (x, y, z) order, from its affine.

    Parameters
    ----------
    affine : array_like
        Homogeneous ``(r+1) x (r+1)`` matrix mapping the array index to world mm,
        ``r >= len(spatial_shape)``.  A 4x4 affine of 2D data must keep the two
        in-plane index axes in the world's x/y plane.
    spatial_shape : sequence of int
        Sizes of the spatial axes in the foreign (x, y[, z]) order.
    space : {"RAS", "LPS"}
        World coordinates of ``affine``.
    what : str
        Name used in error messages (the dictionary key or subject image name).

    Raises
    ------
    GeometryError
        The affine is not square of a fitting size, has shear or a zero axis,
        or tilts a 2D image out of the x/y plane.

    Examples
    --------
    >>> import numpy as np
    >>> g = grid_from_affine(np.diag([-2.0, -1.0, 3.0, 1.0]), (6, 5, 4))
    >>> g.shape, g.spacing, g.direction.diagonal().tolist()
    ((4, 5, 6), (2.0, 1.0, 3.0), [1.0, 1.0, 1.0])
    """
    a = np.asarray(affine, dtype=np.float64)
    n = len(spatial_shape)
    if n not in (2, 3):
        raise GeometryError(f"{what}: medaug works on 2D or 3D images, got {n} spatial axes {tuple(spatial_shape)}")
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] - 1 < n:
        raise GeometryError(
            f"{what}: expected a square affine of size {n + 1} or more for {n}D data, got shape {a.shape}"
        )
    if not np.all(np.isfinite(a)):
        raise GeometryError(f"{what}: the affine has NaN or infinite entries")
    r = a.shape[0] - 1
    if _space(space) == "RAS":
        a = _flip(r) @ a
    if r > n and not is_in_plane(a, n):
        raise GeometryError(
            f"{what}: the {n}D image lies in a tilted plane of {r}D space (its axes have out-of-plane components); "
            "medaug's 2D transforms work in the x/y plane: treat the image as 3D with one slice, or resample it first"
        )
    linear = a[:n, :n]
    spacing = np.linalg.norm(linear, axis=0)
    if np.any(spacing <= 0) or not np.all(np.isfinite(spacing)):
        raise GeometryError(f"{what}: the affine has a zero-length axis (spacing {spacing.tolist()})")
    direction = linear / spacing
    try:
        return Grid(tuple(int(s) for s in reversed(tuple(spatial_shape))), spacing, a[:n, r], direction)
    except InvalidImageError as err:
        raise GeometryError(
            f"{what}: the affine cannot be written as spacing, origin and an orthonormal direction ({err}); "
            "medaug needs orthogonal axes without shear: resample the image first "
            "(e.g. MONAI Spacingd / TorchIO Resample)"
        ) from None


def embed_affine(small: np.ndarray, template: np.ndarray | None = None, size: int | None = None) -> np.ndarray:
    """Put an ``(n+1)x(n+1)`` affine into a larger one: the template's extra rows/columns are kept.

    Parameters
    ----------
    small : ndarray
        The ``(n+1) x (n+1)`` affine (e.g. of a 2D grid).
    template : ndarray, optional
        The larger affine whose out-of-plane part (slice position, third axis) is kept.
    size : int, optional
        Size of the result when there is no template (default ``n+1``); identity elsewhere.
    """
    s = np.asarray(small, float)
    n = s.shape[0] - 1
    if template is not None:
        out = np.array(template, dtype=float, copy=True)
    else:
        out = np.eye(size or n + 1)
    r = out.shape[0] - 1
    if r < n:
        raise GeometryError(f"cannot put a {n}D affine into a {r}D one")
    out[:n, :n] = s[:n, :n]
    out[:n, r] = s[:n, n]
    return out
