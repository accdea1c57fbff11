"""N4 bias-field correction (SimpleITK ``N4BiasFieldCorrectionImageFilter``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data.image import Image
from ..data.io import image_from_sitk, image_to_sitk
from ..errors import ParameterError
from ._common import EnhanceReport, as_float, check_image, finish, timed

__all__ = ["n4_bias_correction"]

_MIN_SHRUNK = 16  # voxels kept per axis after shrinking


def n4_bias_correction(
    image: Image,
    shrink: int = 4,
    iterations: int | list[int] = (50, 50, 50, 50),
    mask: Image | np.ndarray | str | None = "otsu",
    control_points: int = 4,
    convergence: float = 1e-6,
    *,
    keep_dtype: bool = True,
) -> tuple[Image, EnhanceReport, Image]:
    """Estimate and remove a smooth multiplicative bias field (MRI intensity inhomogeneity).

    The field is fitted on a copy shrunk by ``shrink`` (for speed) inside the
    mask, evaluated at full resolution, and divided out: ``corrected = image / field``.

    Parameters
    ----------
    image : Image
        2D or 3D intensity image with positive values in the anatomy (MRI).
    shrink : int
        Shrink factor per axis for the fit (each axis keeps at least 16 voxels).
    iterations : int or list of int
        Iterations per fitting level; a list sets the number of levels.
    mask : "otsu", Image, ndarray or None
        Where the field is fitted: Otsu's foreground (default), a given mask,
        or everywhere (None).  Non-positive voxels are always left out.
    control_points : int
        Control points per axis of the coarsest B-spline mesh (>= 4).
    convergence : float
        Convergence threshold of each level.
    keep_dtype : bool
        Round integer images back to their dtype (else float32).

    Returns
    -------
    (Image, EnhanceReport, Image)
        Corrected image, report, and the estimated field (float32, mean 1 in the mask).

    Raises
    ------
    ParameterError
        Bad parameters, an empty mask, or an image that is mostly non-positive
        in the mask (e.g. CT in HU: N4 is for MRI).
    """
    import SimpleITK as sitk

    from ..spatial.preprocess import foreground_mask

    image = check_image(image, "n4")
    shrink = int(shrink)
    if shrink < 1:
        raise ParameterError(f"n4 'shrink' must be an integer >= 1, got {shrink}")
    iters = [int(iterations)] if np.ndim(iterations) == 0 else [int(i) for i in iterations]
    if not iters or min(iters) < 1:
        raise ParameterError(f"n4 'iterations' must be positive integers (one per fitting level), got {iterations!r}")
    if int(control_points) < 4:
        raise ParameterError(f"n4 'control_points' must be >= 4 (spline order 3 + 1), got {control_points}")
    t0 = timed()
    arr = as_float(image)
    if isinstance(mask, str):
        if mask != "otsu":
            raise ParameterError(f"n4 'mask' must be 'otsu', a mask image or None, got {mask!r}")
        m, _ = foreground_mask(arr)
        mask_kind = "otsu"
    elif mask is None:
        m = np.ones(arr.shape, bool)
        mask_kind = "all"
    else:
        m = np.asarray(mask.array if isinstance(mask, Image) else mask) != 0
        if m.shape != arr.shape:
            raise ParameterError(f"n4 mask shape {m.shape} differs from the image's {arr.shape}")
        mask_kind = "given"
    nonpos = m & (arr <= 0)
    if m.any() and nonpos.sum() > 0.05 * m.sum():
        raise ParameterError(
            f"n4 needs positive intensities in the mask, but {100 * nonpos.sum() / m.sum():.0f}% of the masked voxels "
            "are <= 0; N4 corrects MRI bias fields (CT in HU has no multiplicative bias)"
        )
    m &= arr > 0
    if not m.any():
        raise ParameterError("n4: the mask holds no voxel with a positive value")

    itk = sitk.Cast(image_to_sitk(Image(arr, grid=image.grid)), sitk.sitkFloat32)
    itk_mask = image_to_sitk(Image(m.astype(np.uint8), grid=image.grid))
    factors = [max(1, min(shrink, s // _MIN_SHRUNK)) for s in itk.GetSize()]
    small = sitk.Shrink(itk, factors) if max(factors) > 1 else itk
    small_mask = sitk.Shrink(itk_mask, factors) if max(factors) > 1 else itk_mask
    if not sitk.GetArrayViewFromImage(small_mask).any():
        small_mask = sitk.BinaryDilate(small_mask, [1] * image.ndim)

    n4 = sitk.N4BiasFieldCorrectionImageFilter()
    n4.SetMaximumNumberOfIterations(iters)
    n4.SetNumberOfControlPoints([int(control_points)] * image.ndim)
    n4.SetConvergenceThreshold(float(convergence))
    try:
        n4.Execute(small, small_mask)
    except RuntimeError as err:  # pragma: no cover - ITK refusing unusual inputs
        raise ParameterError(f"n4 failed: {str(err).strip().splitlines()[-1]}") from None
    log_field = n4.GetLogBiasFieldAsImage(itk)
    field = np.exp(sitk.GetArrayFromImage(log_field).astype(np.float64))
    # ITK's field is defined up to a constant: normalise it to mean 1 in the mask so intensities keep their scale
    field /= float(np.mean(field[m]))
    corrected = arr / field
    field_img = image_from_sitk(sitk.GetImageFromArray(field.astype(np.float32)))
    field_img = Image(field_img.array, grid=image.grid)
    params: dict[str, Any] = {
        "shrink": shrink,
        "iterations": iters,
        "mask": mask_kind,
        "control_points": int(control_points),
        "convergence": float(convergence),
    }
    details = {
        "shrink_used": factors[::-1],
        "levels": len(iters),
        "elapsed_iterations": int(n4.GetElapsedIterations()),
        "field_range": [round(float(field[m].min()), 4), round(float(field[m].max()), 4)],
        "mask_fraction": round(float(m.mean()), 4),
    }
    out, report = finish(image, corrected, "n4", params, t0, keep_dtype=keep_dtype, details=details)
    return out, report, field_img
