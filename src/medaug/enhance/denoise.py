"""Denoising: curvature flow and bilateral filtering (SimpleITK), non-local means (scikit-image)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..data.image import Image
from ..data.io import image_to_sitk
from ..errors import ParameterError
from ._common import EnhanceReport, as_float, check_image, finish, timed

__all__ = ["denoise", "DENOISERS", "estimate_noise"]

#: Denoiser name -> one-line description.
DENOISERS = {
    "curvature": "SimpleITK CurvatureFlow: edge-preserving smoothing by mean-curvature motion (fast, 2D/3D)",
    "bilateral": "SimpleITK Bilateral: Gaussian in space (mm) and in intensity",
    "nlm": "scikit-image non-local means (fast mode): best on 2D; slow on large 3D volumes",
}


def estimate_noise(array: np.ndarray) -> float:
    """Gaussian noise standard deviation by Donoho's MAD rule on the finest Haar detail coefficients.

    The diagonal detail ``w`` of each 2x2 (2x2x2 in 3D) block has the noise's
    standard deviation and almost no signal in smooth regions, so
    ``sigma = median(|w|) / 0.6745`` (as scikit-image's ``estimate_sigma``, which
    needs PyWavelets, does with a Daubechies wavelet).
    """
    arr = np.asarray(array, np.float64)
    crop = tuple(slice(0, s - s % 2) for s in arr.shape)
    a = arr[crop]
    if any(s < 2 for s in a.shape):
        return 0.0
    w = np.zeros([s // 2 for s in a.shape])
    for corner in np.ndindex(*([2] * a.ndim)):
        sign = -1.0 if sum(corner) % 2 else 1.0
        w += sign * a[tuple(slice(c, None, 2) for c in corner)]
    w /= np.sqrt(2.0**a.ndim)
    return float(np.median(np.abs(w)) / 0.6745)


def denoise(
    image: Image,
    method: str = "curvature",
    *,
    iterations: int = 5,
    time_step: float = 0.0625,
    sigma_mm: float | None = None,
    range_sigma: float | None = None,
    h: float | None = None,
    patch_size: int = 5,
    patch_distance: int = 6,
    keep_dtype: bool = True,
) -> tuple[Image, EnhanceReport]:
    """Reduce noise, keeping edges.

    Parameters
    ----------
    image : Image
        2D or 3D intensity image.
    method : {"curvature", "bilateral", "nlm"}
        See :data:`DENOISERS`.
    iterations, time_step : int, float
        ``curvature``: number of iterations and time step (<= 0.0625 is stable in 3D).
    sigma_mm : float, optional
        ``bilateral``: spatial Gaussian width in mm; twice the smallest spacing by default.
    range_sigma : float, optional
        ``bilateral``: intensity Gaussian width; three times the estimated noise by default.
    h : float, optional
        ``nlm``: filtering strength; 0.8 times the estimated noise by default.
    patch_size, patch_distance : int
        ``nlm``: patch size and search distance in voxels.
    keep_dtype : bool
        Round integer images back to their dtype (else float32).
    """
    import SimpleITK as sitk

    image = check_image(image, "denoise")
    if method not in DENOISERS:
        from ..errors import did_you_mean

        raise ParameterError(
            f"unknown denoiser {method!r}{did_you_mean(method, DENOISERS)}; use one of {', '.join(DENOISERS)}"
        )
    t0 = timed()
    arr = as_float(image)
    params: dict[str, Any] = {"denoiser": method}
    noise = estimate_noise(arr)
    details: dict[str, Any] = {"noise_estimate": noise}
    if method == "curvature":
        if int(iterations) < 1 or not (0 < float(time_step) <= 0.25):
            raise ParameterError(
                f"curvature flow needs iterations >= 1 and 0 < time_step <= 0.25, got {iterations}, {time_step}"
            )
        itk = sitk.Cast(image_to_sitk(Image(arr, grid=image.grid)), sitk.sitkFloat32)
        out = sitk.GetArrayFromImage(sitk.CurvatureFlow(itk, float(time_step), int(iterations)))
        params.update(iterations=int(iterations), time_step=float(time_step))
    elif method == "bilateral":
        spread = float(np.percentile(arr, 99) - np.percentile(arr, 1)) or 1.0
        s_mm = 2.0 * min(image.spacing) if sigma_mm is None else float(sigma_mm)
        r_sig = max(3.0 * noise, 1e-3 * spread) if range_sigma is None else float(range_sigma)
        if not (s_mm > 0 and r_sig > 0):
            raise ParameterError(f"bilateral needs sigma_mm > 0 and range_sigma > 0, got {s_mm}, {r_sig}")
        itk = sitk.Cast(image_to_sitk(Image(arr, grid=image.grid)), sitk.sitkFloat32)
        out = sitk.GetArrayFromImage(sitk.Bilateral(itk, s_mm, r_sig))
        params.update(sigma_mm=s_mm, range_sigma=r_sig)
    else:
        from skimage.restoration import denoise_nl_means

        strength = 0.8 * noise if h is None else float(h)
        if int(patch_size) < 1 or int(patch_distance) < 1:
            raise ParameterError(
                f"nlm needs patch_size >= 1 and patch_distance >= 1, got {patch_size}, {patch_distance}"
            )
        if strength <= 0:
            out = arr.copy()  # no measurable noise: nothing to remove
        else:
            out = denoise_nl_means(
                arr.astype(np.float64),
                patch_size=int(patch_size),
                patch_distance=int(patch_distance),
                h=strength,
                sigma=noise,
                fast_mode=True,
                preserve_range=True,
                channel_axis=None,
            )
        params.update(h=strength, patch_size=int(patch_size), patch_distance=int(patch_distance))
    details["noise_after"] = estimate_noise(out)
    return finish(image, out, "denoise", params, t0, keep_dtype=keep_dtype, details=details)
