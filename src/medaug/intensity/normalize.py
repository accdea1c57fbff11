"""Intensity preprocessing: clipping, percentile clipping, z-score and min–max rescaling.

These are deterministic.  :class:`Clip` is point-wise and fuses into the
resampling sweep; the others compute statistics from the data they receive
(at that point of the pipeline), so they run after the resampling.

* :class:`Clip` — clamp to ``[lo, hi]`` (e.g. a HU range).
* :class:`ClipPercentile` — clamp to the image's own percentiles.
* :class:`ZNormalize` — z-score over the whole image, over its non-zero voxels
  (MRI practice: skull-stripped or masked images), or over a label map; voxels
  outside the region keep their value.
* :class:`RescaleIntensity` — min–max (or percentile) mapping to ``[out_min, out_max]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data.grid import Grid
from ..data.image import Image
from ..data.sample import Sample
from ..engine.pointwise import CLIP, FusedOps
from ..engine.ranges import INTENSITY, number
from ..engine.transform import IntensityTransform, PointwiseTransform, Transform
from ..errors import ParameterError

__all__ = ["Clip", "ClipPercentile", "ZNormalize", "RescaleIntensity", "percentiles", "z_normalize"]


def _number(value: Any, name: str, default: float) -> float:
    return default if value is None else number(value, name, INTENSITY)


def percentiles(data: torch.Tensor | np.ndarray, qs: tuple[float, ...], where: np.ndarray | None = None) -> list[float]:
    """Percentiles (0–100) of ``data`` (optionally of the voxels where ``where`` is true), linear interpolation."""
    arr = data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
    if where is not None:
        arr = arr[where]
    if arr.size == 0:
        return [0.0 for _ in qs]
    return [float(v) for v in np.percentile(arr.astype(np.float64, copy=False), qs)]


def _check_percentiles(lower: Any, upper: Any, name: str) -> tuple[float, float]:
    lo, hi = number(lower, "lower", (0.0, 100.0)), number(upper, "upper", (0.0, 100.0))
    if not lo < hi:
        raise ParameterError(f"{name}: percentiles must satisfy 0 <= lower < upper <= 100, got {lo}, {hi}")
    return lo, hi


@dataclass
class Clip(PointwiseTransform):
    """Clamp intensities to ``[lo, hi]``; ``None`` leaves that side open.

    Parameters
    ----------
    lo, hi : float or None
        Bounds in the image's units (e.g. HU).
    mask : str, optional
        Name of a label map restricting the change to its non-zero voxels.

    Examples
    --------
    >>> from medaug import shepp_logan_2d
    >>> out = Clip(lo=-200, hi=200)(shepp_logan_2d(32))
    >>> float(out.image.array.min()), float(out.image.array.max())
    (-200.0, 200.0)
    """

    lo: float | None = None
    hi: float | None = None
    mask: str | None = None

    def __post_init__(self) -> None:
        lo, hi = _number(self.lo, "lo", -np.inf), _number(self.hi, "hi", np.inf)
        if lo > hi:
            raise ParameterError(f"Clip needs lo <= hi, got lo={self.lo}, hi={self.hi}")

    def point_ops(self, grid: Grid) -> FusedOps:
        ops = FusedOps()
        ops.add(CLIP, _number(self.lo, "lo", -np.inf), _number(self.hi, "hi", np.inf))
        return ops

    def short(self) -> str:
        return f"clip [{self.lo}, {self.hi}]"


@dataclass
class ClipPercentile(IntensityTransform):
    """Clamp each intensity image to its own ``lower`` and ``upper`` percentiles.

    The percentiles are computed on the data reaching this step (after any
    earlier resampling), over every voxel.

    Parameters
    ----------
    lower, upper : float
        Percentiles in [0, 100].
    mask : str, optional
        Name of a label map restricting the change to its non-zero voxels.
    """

    lower: float = 0.5
    upper: float = 99.5
    mask: str | None = None

    def __post_init__(self) -> None:
        _check_percentiles(self.lower, self.upper, "ClipPercentile")

    def apply_tensor(self, data: torch.Tensor, grid: Grid, image: Image, channel: int = 0) -> torch.Tensor:
        lo, hi = percentiles(data, (float(self.lower), float(self.upper)))
        return torch.clamp(data, lo, hi)

    def short(self) -> str:
        return f"clip p{self.lower:g}–p{self.upper:g}"


@dataclass
class RescaleIntensity(IntensityTransform):
    """Map intensities linearly to ``[out_min, out_max]``.

    Without ``percentiles`` the image's min and max map to the ends; with
    ``percentiles=[lower, upper]`` those percentiles do and values beyond are
    clipped.  A constant image maps to ``out_min``.

    Parameters
    ----------
    out_min, out_max : float
        Output range.
    percentiles : [lower, upper], optional
        Percentiles (0–100) used instead of the min and max.
    mask : str, optional
        Name of a label map restricting the change to its non-zero voxels.
    """

    out_min: float = 0.0
    out_max: float = 1.0
    percentiles: list[float] | tuple[float, float] | None = None
    mask: str | None = None

    def __post_init__(self) -> None:
        a, b = _number(self.out_min, "out_min", 0.0), _number(self.out_max, "out_max", 1.0)
        self.out_min, self.out_max = a, b
        if a >= b:
            raise ParameterError(f"RescaleIntensity needs finite out_min < out_max, got {self.out_min}, {self.out_max}")
        if self.percentiles is not None:
            p = self.percentiles
            if not isinstance(p, (list, tuple)) or len(p) != 2:
                raise ParameterError(f"RescaleIntensity 'percentiles' must be [lower, upper] or null, got {p!r}")
            self.percentiles = list(_check_percentiles(p[0], p[1], "RescaleIntensity"))

    def apply_tensor(self, data: torch.Tensor, grid: Grid, image: Image, channel: int = 0) -> torch.Tensor:
        a, b = float(self.out_min), float(self.out_max)
        if self.percentiles is None:
            lo, hi = float(data.min()), float(data.max())
        else:
            lo, hi = percentiles(data, (float(self.percentiles[0]), float(self.percentiles[1])))
        if not hi > lo:
            return torch.full_like(data, a)
        scale = (b - a) / (hi - lo)
        out = (data.to(torch.float64) - lo) * scale + a
        if self.percentiles is not None:
            out = torch.clamp(out, a, b)
        return out.to(torch.float32)

    def short(self) -> str:
        return f"rescale [{self.out_min:g}, {self.out_max:g}]"


def z_normalize(data: torch.Tensor, region: torch.Tensor | None = None) -> torch.Tensor:
    """``(v - mean) / std`` with the statistics of ``region`` (all voxels when None); other voxels kept.

    A region with zero spread is only centred (divided by 1); an empty region leaves the data as it is.
    """
    x = data.to(torch.float64)
    sel = x if region is None else x[region]
    if sel.numel() == 0:
        return data.to(torch.float32)
    mean = sel.mean()
    std = sel.std(correction=0) if sel.numel() > 1 else torch.zeros((), dtype=torch.float64, device=x.device)
    if not float(std) > 0:
        std = torch.ones((), dtype=torch.float64, device=x.device)
    out = (x - mean) / std
    if region is not None:
        out = torch.where(region, out, x)
    return out.to(torch.float32)


@dataclass
class ZNormalize(Transform):
    """Z-score normalisation: ``(v - mean) / std`` over a region; voxels outside keep their value.

    Parameters
    ----------
    mask : str, optional
        ``None``: statistics over every voxel, every voxel changed.
        ``"nonzero"``: statistics over the image's non-zero voxels, zeros stay 0
        (MRI practice for skull-stripped or masked images).
        A label map's name: statistics over its non-zero voxels, the rest unchanged.

    Notes
    -----
    It needs the whole sample (the label map of ``mask``), so the engine runs it
    through :meth:`apply_sample` after any resampling; label maps are untouched.

    Examples
    --------
    >>> import numpy as np
    >>> from medaug import Image, Sample
    >>> s = Sample(image=Image(np.array([[0.0, 2.0], [4.0, 0.0]], np.float32)))
    >>> ZNormalize(mask="nonzero")(s).image.array.tolist()
    [[0.0, -1.0], [1.0, 0.0]]
    """

    mask: str | None = None

    def __post_init__(self) -> None:
        if self.mask is not None and not isinstance(self.mask, str):
            raise ParameterError(f"ZNormalize 'mask' must be null, 'nonzero' or a label map's name, got {self.mask!r}")

    def _region(self, sample: Sample, data: torch.Tensor) -> torch.Tensor | None:
        if self.mask is None:
            return None
        if self.mask == "nonzero" and self.mask not in sample:
            return data != 0
        if self.mask not in sample:
            raise ParameterError(
                f"ZNormalize: mask '{self.mask}' is neither 'nonzero' nor an image of the sample (has {list(sample)})"
            )
        return (sample[self.mask].tensor != 0).to(data.device)

    def apply_sample(self, sample: Sample) -> Sample:
        images: dict[str, Image] = {}
        for name, img in sample.intensity_images.items():
            data = img.tensor.to(torch.float32)
            new = z_normalize(data, self._region(sample, data))
            images[name] = img.with_data(new if isinstance(img.data, torch.Tensor) else new.cpu().numpy())
        return sample.replace(images)

    def apply_tensor(self, data: torch.Tensor, grid: Grid, image: Image, channel: int = 0) -> torch.Tensor:
        """Normalise one tensor (``mask`` None or ``"nonzero"``; a label-map mask needs the sample)."""
        if self.mask not in (None, "nonzero"):
            raise ParameterError("ZNormalize with a label-map mask needs the sample: apply it to a Sample")
        return z_normalize(data, None if self.mask is None else data != 0)

    def short(self) -> str:
        return "z-score" if self.mask is None else f"z-score ({self.mask})"
