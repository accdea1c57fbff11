"""Image-quality and segmentation metrics between a reference ``a`` and a test image ``b``.

Image quality (2D or 3D intensity images on the same grid):

* PSNR in dB, ``10 log10(R² / MSE)`` with the data range ``R`` stated in the
  result (the reference's ``max - min`` unless given); ``inf`` for identical images.
* SSIM (scikit-image's ``structural_similarity``, 7-voxel uniform window, or
  smaller for small images, with the same data range), 2D or 3D.
* MAE and MSE.

Segmentation (label maps on the same grid), per label value, distances in mm
using the spacing:

* Dice and IoU (Jaccard) from SimpleITK's ``LabelOverlapMeasuresImageFilter``.
* Hausdorff distance from SimpleITK's ``HausdorffDistanceImageFilter`` (between
  the two voxel sets).
* HD95 and ASD from surface distances, as MONAI computes them: the surface
  voxels of a mask are those its binary erosion (6-connected in 3D,
  4-connected in 2D; outside the image counts as background) removes; the
  distance of each surface voxel of one mask to the nearest surface voxel of
  the other is measured between voxel centres in mm (Euclidean distance
  transform with the spacing).  HD95 is the larger of the two directed 95th
  percentiles; ASD is the mean of all surface distances of both directions
  (average symmetric surface distance).  Both agree with MONAI's
  ``compute_hausdorff_distance(percentile=95)`` and
  ``compute_average_surface_distance(symmetric=True)`` given the spacing.

When a label is missing from one image its Dice and IoU are 0 and its
distances are ``inf``.  Images on different grids raise
:class:`~medaug.errors.GeometryError`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .data.grid import Grid
from .data.image import Image
from .errors import GeometryError, ParameterError

__all__ = [
    "psnr",
    "ssim",
    "mae",
    "mse",
    "image_metrics",
    "dice",
    "iou",
    "hausdorff",
    "surface_distances",
    "segmentation_metrics",
    "jsonable",
]

ArrayOrImage = np.ndarray | Image


# ---------------------------------------------------------------- inputs
def _pair(a: ArrayOrImage, b: ArrayOrImage) -> tuple[np.ndarray, np.ndarray, Grid | None]:
    """Arrays of ``a`` and ``b`` after checking that they share a grid (images) or a shape (arrays)."""
    grid = None
    if isinstance(a, Image) and isinstance(b, Image):
        a.grid.require_same(b.grid, "A and B")
        grid = a.grid
    aa = a.array if isinstance(a, Image) else np.asarray(a)
    bb = b.array if isinstance(b, Image) else np.asarray(b)
    if aa.shape != bb.shape:
        raise GeometryError(f"A and B differ in shape: {aa.shape} vs {bb.shape}")
    if grid is None:
        grid = a.grid if isinstance(a, Image) else b.grid if isinstance(b, Image) else None
    return aa, bb, grid


def _data_range(reference: np.ndarray, data_range: float | None) -> float:
    if data_range is not None:
        r = float(data_range)
        if not (np.isfinite(r) and r > 0):
            raise ParameterError(f"data_range must be a positive number, got {data_range!r}")
        return r
    r = float(np.max(reference)) - float(np.min(reference))
    if not r > 0:
        raise ParameterError(
            "the reference image A is constant, so its data range is 0; give the data range explicitly (--data-range)"
        )
    return r


# ---------------------------------------------------------------- image quality
def mse(a: ArrayOrImage, b: ArrayOrImage) -> float:
    """Mean squared error."""
    aa, bb, _ = _pair(a, b)
    d = aa.astype(np.float64) - bb.astype(np.float64)
    return float(np.mean(d * d))


def mae(a: ArrayOrImage, b: ArrayOrImage) -> float:
    """Mean absolute error."""
    aa, bb, _ = _pair(a, b)
    return float(np.mean(np.abs(aa.astype(np.float64) - bb.astype(np.float64))))


def psnr(a: ArrayOrImage, b: ArrayOrImage, data_range: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB, ``10 log10(R² / MSE)``; ``inf`` when the images are equal.

    ``R`` is ``data_range``, or the reference ``a``'s ``max - min``.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[0.0, 1.0], [2.0, 4.0]])
    >>> psnr(a, a), round(psnr(a, a + 0.1), 2)
    (inf, 32.04)
    """
    aa, bb, _ = _pair(a, b)
    r = _data_range(aa, data_range)
    m = mse(aa, bb)
    if m == 0:
        return math.inf
    return float(10.0 * np.log10(r * r / m))


def _win_size(shape: tuple[int, ...]) -> int:
    w = min(7, min(shape))
    if w % 2 == 0:
        w -= 1
    if w < 3:
        raise ParameterError(f"SSIM needs at least 3 voxels along every axis, got shape {shape}")
    return w


def ssim(a: ArrayOrImage, b: ArrayOrImage, data_range: float | None = None) -> float:
    """Mean structural similarity (scikit-image), 2D or 3D, with the data range of :func:`psnr`."""
    from skimage.metrics import structural_similarity

    aa, bb, _ = _pair(a, b)
    r = _data_range(aa, data_range)
    return float(
        structural_similarity(aa.astype(np.float64), bb.astype(np.float64), data_range=r, win_size=_win_size(aa.shape))
    )


def image_metrics(a: ArrayOrImage, b: ArrayOrImage, data_range: float | None = None) -> dict[str, Any]:
    """PSNR, SSIM, MAE and MSE of ``b`` against the reference ``a``, with the data range used.

    Returns
    -------
    dict
        ``psnr`` (dB), ``ssim``, ``mae``, ``mse``, ``data_range`` and
        ``data_range_source`` (``"given"`` or ``"A max - min"``).
    """
    aa, bb, _ = _pair(a, b)
    r = _data_range(aa, data_range)
    return {
        "psnr": psnr(aa, bb, r),
        "ssim": ssim(aa, bb, r),
        "mae": mae(aa, bb),
        "mse": mse(aa, bb),
        "data_range": r,
        "data_range_source": "given" if data_range is not None else "A max - min",
    }


# ---------------------------------------------------------------- segmentation
def _mask_image(mask: np.ndarray, grid: Grid | None, spacing: Any):
    import SimpleITK as sitk

    itk = sitk.GetImageFromArray(mask.astype(np.uint8))
    if grid is not None:
        itk.SetSpacing(grid.spacing)
        itk.SetOrigin(grid.origin)
        itk.SetDirection(tuple(grid.direction.ravel()))
    elif spacing is not None:
        sp = np.atleast_1d(np.asarray(spacing, float)) * np.ones(mask.ndim)
        itk.SetSpacing(tuple(float(s) for s in sp))
    return itk


def _masks(a: ArrayOrImage, b: ArrayOrImage, spacing: Any):
    aa, bb, grid = _pair(a, b)
    if grid is not None and spacing is not None:
        raise ParameterError("give 'spacing' only with plain arrays; images carry their own spacing")
    return aa != 0, bb != 0, grid


def dice(a: ArrayOrImage, b: ArrayOrImage) -> float:
    """Dice coefficient of the non-zero voxels of ``a`` and ``b`` (1 when both are empty)."""
    ma, mb, _ = _masks(a, b, None)
    return _overlap(ma, mb)[0]


def iou(a: ArrayOrImage, b: ArrayOrImage) -> float:
    """Intersection over union (Jaccard) of the non-zero voxels (1 when both are empty)."""
    ma, mb, _ = _masks(a, b, None)
    return _overlap(ma, mb)[1]


def _overlap(ma: np.ndarray, mb: np.ndarray) -> tuple[float, float]:
    import SimpleITK as sitk

    na, nb = int(ma.sum()), int(mb.sum())
    if na == 0 and nb == 0:
        return 1.0, 1.0
    if na == 0 or nb == 0:
        return 0.0, 0.0
    f = sitk.LabelOverlapMeasuresImageFilter()
    f.Execute(_mask_image(ma, None, None), _mask_image(mb, None, None))
    return float(f.GetDiceCoefficient(1)), float(f.GetJaccardCoefficient(1))


def hausdorff(a: ArrayOrImage, b: ArrayOrImage, *, spacing: Any = None) -> float:
    """Hausdorff distance in mm between the non-zero voxels of ``a`` and ``b`` (SimpleITK).

    ``spacing`` (x, y, z order) is needed only for plain arrays; ``inf`` when one mask is empty.
    """
    ma, mb, grid = _masks(a, b, spacing)
    return _hausdorff(ma, mb, grid, spacing)


def _hausdorff(ma, mb, grid, spacing) -> float:
    import SimpleITK as sitk

    if not ma.any() or not mb.any():
        return 0.0 if not ma.any() and not mb.any() else math.inf
    f = sitk.HausdorffDistanceImageFilter()
    f.Execute(_mask_image(ma, grid, spacing), _mask_image(mb, grid, spacing))
    return float(f.GetHausdorffDistance())


def surface_distances(a: ArrayOrImage, b: ArrayOrImage, *, spacing: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Distances in mm from each surface voxel of ``a`` to the nearest surface voxel of ``b``, and from ``b`` to ``a``.

    Surface voxels and distances as MONAI defines them (see the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((9, 9), bool); a[2:7, 2:7] = True     # a 5 x 5 square
    >>> b = np.zeros((9, 9), bool); b[1:8, 1:8] = True     # a 7 x 7 square around it
    >>> da, db = surface_distances(a, b, spacing=(0.5, 0.5))
    >>> sorted(set(da.round(3).tolist()))                  # every surface voxel of a is 1 voxel from b's
    [0.5]
    """
    ma, mb, grid = _masks(a, b, spacing)
    return _surface_distances(ma, mb, grid, spacing)


def _surface(mask: np.ndarray) -> np.ndarray:
    """The voxels a binary erosion removes (face-connected structure; outside the array is background)."""
    from scipy.ndimage import binary_erosion

    return mask & ~binary_erosion(mask, border_value=0)


def _surface_distances(ma, mb, grid, spacing) -> tuple[np.ndarray, np.ndarray]:
    from scipy.ndimage import distance_transform_edt

    if grid is not None:
        sampling = np.asarray(grid.spacing, float)[::-1]
    elif spacing is not None:
        sampling = (np.atleast_1d(np.asarray(spacing, float)) * np.ones(ma.ndim))[::-1]
    else:
        sampling = np.ones(ma.ndim)
    union = np.nonzero(ma | mb)
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in union)  # every surface voxel lies in it
    ea, eb = _surface(ma)[box], _surface(mb)[box]
    a_to_b = distance_transform_edt(~eb, sampling=sampling)[ea]
    b_to_a = distance_transform_edt(~ea, sampling=sampling)[eb]
    return a_to_b.astype(np.float64), b_to_a.astype(np.float64)


def segmentation_metrics(
    a: ArrayOrImage,
    b: ArrayOrImage,
    *,
    labels: Any = None,
    spacing: Any = None,
) -> dict[int, dict[str, float]]:
    """Dice, IoU, Hausdorff, HD95 and ASD (mm) per label value of two label maps.

    Parameters
    ----------
    a, b : Image or ndarray
        Reference and test label maps on the same grid.
    labels : list of int, optional
        Label values to evaluate; every non-zero value found in ``a`` or ``b`` by default.
    spacing : list of float, optional
        Voxel size (x, y, z order) when ``a`` and ``b`` are plain arrays.

    Returns
    -------
    dict
        ``{value: {"dice", "iou", "hausdorff_mm", "hd95_mm", "asd_mm", "voxels_a", "voxels_b"}}``.
    """
    aa, bb, grid = _pair(a, b)
    if grid is not None and spacing is not None:
        raise ParameterError("give 'spacing' only with plain arrays; images carry their own spacing")
    for name, arr in (("A", aa), ("B", bb)):
        if arr.dtype.kind == "f" and not np.array_equal(arr, np.round(arr)):
            raise ParameterError(f"{name} is not a label map: it has non-integer values")
    if labels is None:
        values = sorted(int(v) for v in np.union1d(np.unique(aa), np.unique(bb)) if v != 0)
    else:
        values = [int(v) for v in np.atleast_1d(np.asarray(labels))]
    out: dict[int, dict[str, float]] = {}
    for v in values:
        ma, mb = aa == v, bb == v
        d, j = _overlap(ma, mb)
        row: dict[str, float] = {"dice": d, "iou": j}
        if ma.any() and mb.any():
            row["hausdorff_mm"] = _hausdorff(ma, mb, grid, spacing)
            da, db = _surface_distances(ma, mb, grid, spacing)
            row["hd95_mm"] = float(max(np.percentile(da, 95), np.percentile(db, 95)))
            row["asd_mm"] = float(np.concatenate([da, db]).mean())
        else:
            missing = 0.0 if not ma.any() and not mb.any() else math.inf
            row.update(hausdorff_mm=missing, hd95_mm=missing, asd_mm=missing)
        row["voxels_a"] = int(ma.sum())
        row["voxels_b"] = int(mb.sum())
        out[v] = row
    return out


def jsonable(value: Any) -> Any:
    """Replace non-finite floats by the strings ``"inf"``, ``"-inf"``, ``"nan"`` (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if math.isnan(f):
            return "nan"
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        return f
    if isinstance(value, np.integer):
        return int(value)
    return value
