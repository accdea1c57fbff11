"""Low resolution along one axis (thick slices, anisotropic acquisitions), back on the original grid."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..data.axes import array_axis, axis_choices, index_axis, pick_axis
from ..data.grid import Grid
from ..data.image import Image
from ..engine.ranges import Range, RangeLike, number
from ..engine.transform import Context, IntensityTransform, RandomIntensityTransform
from .blur import smooth_axis

#: Down-sampling factors; ``f`` means [1, f].
FACTOR = Range("from", anchor=1.0, bounds=(1.0, 100.0))
#: An index axis (0, 1, 2 or 'x', 'y', 'z'), or candidates to pick from.
AxisChoice = int | str | list[int | str] | None

__all__ = ["LowResolution", "RandomLowResolution"]

_FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))


def _resize_axis(data: torch.Tensor, axis: int, size: int) -> torch.Tensor:
    """Linear resampling of one array axis to ``size`` samples over the same extent (torch interpolate)."""
    shape = list(data.shape)
    shape[axis] = size
    mode = "trilinear" if data.ndim == 3 else "bilinear"
    out = F.interpolate(data[None, None], size=tuple(shape), mode=mode, align_corners=False)
    return out[0, 0]


@dataclass
class LowResolution(IntensityTransform):
    """Down-sample along one axis by ``factor`` and interpolate back onto the original grid.

    The axis is first smoothed with a Gaussian whose FWHM is ``factor`` voxels
    (the profile of a slice ``factor`` times thicker, and the anti-aliasing
    filter), then sampled at ``round(n / factor)`` points over the same extent
    and linearly interpolated back to ``n`` (``torch.nn.functional.interpolate``,
    CPU or CUDA).  Shape and geometry are unchanged.

    Parameters
    ----------
    axis : int, optional
        Index axis (0 = x, 1 = y, 2 = z); the last one (z in 3D, y in 2D) when omitted.
    factor : float
        Down-sampling factor, >= 1 (1 is the identity).
    mask : str, optional
        Restrict the change to the non-zero voxels of this label map.
    """

    axis: int | None = None
    factor: float = 2.0
    mask: str | None = None

    def __post_init__(self) -> None:
        if self.axis is not None:
            self.axis = index_axis(self.axis)
        self.factor = number(self.factor, "factor", FACTOR.bounds)

    def apply_tensor(self, data: torch.Tensor, grid: Grid, image: Image, channel: int = 0) -> torch.Tensor:
        v = data.to(torch.float32)
        ax = array_axis(data.ndim - 1 if self.axis is None else self.axis, data.ndim)
        n = v.shape[ax]
        m = max(1, int(round(n / self.factor)))
        if self.factor == 1.0 or m >= n:
            return v
        smooth = smooth_axis(v, self.factor / _FWHM, ax)
        return _resize_axis(_resize_axis(smooth, ax, m), ax, n)

    def short(self) -> str:
        return f"lowres ×{self.factor:.1f}"


@dataclass
class RandomLowResolution(RandomIntensityTransform):
    """Random anisotropic low resolution.

    Parameters
    ----------
    axis : int, list of int, optional
        The axis, or candidates to pick from; any axis when omitted.
    factor : float or [min, max]
        Down-sampling factor range; ``f`` means [1, f].  Values >= 1.
    mask : str, optional
    p : float
    """

    axis: AxisChoice = None
    factor: RangeLike = (1.5, 4.0)
    mask: str | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        self._axes = axis_choices(self.axis)
        self._factor = FACTOR.parse(self.factor, "factor")

    def sample(self, rng: np.random.Generator, ctx: Context) -> LowResolution:
        return LowResolution(
            axis=pick_axis(rng, self._axes, ctx.ndim, "axis"),
            factor=float(rng.uniform(*self._factor)),
            mask=self.mask,
        )
