"""Contrast enhancement: CLAHE and unsharp masking."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data.image import Image
from ..data.io import image_to_sitk
from ..errors import ParameterError
from ._common import EnhanceReport, as_float, check_image, finish, timed

__all__ = ["clahe", "unsharp_mask"]


def clahe(
    image: Image,
    clip_limit: float = 0.01,
    tiles: int | tuple[int, ...] = 8,
    lo: float | None = None,
    hi: float | None = None,
    *,
    keep_dtype: bool = True,
) -> tuple[Image, EnhanceReport]:
    """Contrast-limited adaptive histogram equalisation, in the image's units.

    Parameters
    ----------
    image : Image
        2D or 3D intensity image.
    clip_limit : float
        In (0, 1]; higher gives more local contrast.
    tiles : int or tuple of int
        Contextual regions per axis (array order).
    lo, hi : float, optional
        Intensity range to equalise (e.g. a CT window, -160 to 240 HU); the
        image's min and max by default.  Values outside are clipped to it.
    keep_dtype : bool
        Round integer images back to their dtype (else float32).

    Returns
    -------
    (Image, EnhanceReport)
        The result on the same grid, and what was done.
    """
    from ..intensity.clahe import equalize_adaptive

    image = check_image(image, "clahe")
    t0 = timed()
    out = equalize_adaptive(as_float(image), clip_limit, tiles, lo, hi)
    params = {"clip_limit": float(clip_limit), "tiles": tiles if np.ndim(tiles) == 0 else list(tiles)}
    if lo is not None:
        params["lo"] = float(lo)
    if hi is not None:
        params["hi"] = float(hi)
    return finish(image, out, "clahe", params, t0, keep_dtype=keep_dtype)


def unsharp_mask(
    image: Image,
    sigma_mm: float = 1.0,
    amount: float = 0.5,
    threshold: float = 0.0,
    *,
    keep_dtype: bool = True,
) -> tuple[Image, EnhanceReport]:
    """Unsharp masking ``v + amount * (v - G_sigma * v)`` (SimpleITK ``UnsharpMask``).

    Parameters
    ----------
    sigma_mm : float
        Standard deviation of the Gaussian blur, in mm (the spacing is used,
        so anisotropic voxels get the same physical blur).
    amount : float
        Strength, >= 0.
    threshold : float
        Differences ``v - blur`` below this (image units) are not sharpened.
    """
    import SimpleITK as sitk

    image = check_image(image, "unsharp")
    if not (np.isfinite(sigma_mm) and sigma_mm > 0):
        raise ParameterError(f"unsharp 'sigma_mm' must be > 0, got {sigma_mm}")
    if not (np.isfinite(amount) and amount >= 0):
        raise ParameterError(f"unsharp 'amount' must be >= 0, got {amount}")
    if not (np.isfinite(threshold) and threshold >= 0):
        raise ParameterError(f"unsharp 'threshold' must be >= 0, got {threshold}")
    t0 = timed()
    itk = sitk.Cast(image_to_sitk(Image(as_float(image), grid=image.grid)), sitk.sitkFloat32)
    res = sitk.UnsharpMask(itk, [float(sigma_mm)] * image.ndim, float(amount), float(threshold), False)
    out = sitk.GetArrayFromImage(res)
    params: dict[str, Any] = {"sigma_mm": float(sigma_mm), "amount": float(amount), "threshold": float(threshold)}
    return finish(image, out, "unsharp", params, t0, keep_dtype=keep_dtype)
