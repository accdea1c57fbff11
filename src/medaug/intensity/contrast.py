"""Contrast, brightness and random monotone histogram curves.

:class:`Contrast` and :class:`Brightness` are affine maps of the grey levels
(fusable into the resampling sweep); :class:`HistogramShift` is a non-linear
monotone curve through control points, evaluated in torch (CPU or CUDA).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ..data.grid import Grid
from ..data.image import Image
from ..engine.pointwise import AFFINE, FusedOps
from ..engine.ranges import BIG, INTENSITY, Range, RangeLike, number, numbers
from ..engine.transform import Context, IntensityTransform, PointwiseTransform, RandomIntensityTransform
from ..errors import ParameterError
from ._base import intensity_range

#: Contrast factors; ``s`` means (1 - s, 1 + s).
SCALE = Range("symmetric", anchor=1.0, bounds=(0.01, 100.0))
#: Offsets in image units.
SHIFT = Range("symmetric", bounds=(-BIG, BIG))

__all__ = [
    "Contrast", "RandomContrast", "Brightness", "RandomBrightness", "HistogramShift", "RandomHistogramShift",
    "intensity_mean",
]


def intensity_mean(ctx: Context, mask: str | None = None) -> float:
    """Mean over the sample's intensity images (within the non-zero voxels of ``mask`` when given)."""
    sel = None
    if mask is not None and mask in ctx.sample:
        sel = ctx.sample[mask].array != 0
    total, count = 0.0, 0
    for img in ctx.sample.intensity_images.values():
        arr = img.array if sel is None else img.array[sel]
        total += float(arr.sum(dtype=np.float64))
        count += arr.size
    return total / count if count else 0.0


# ------------------------------------------------------------------ contrast
@dataclass
class Contrast(PointwiseTransform):
    """``v' = mean + scale * (v - mean) + shift``: scale the histogram about ``mean`` and shift it.

    Parameters
    ----------
    scale : float
        Contrast factor, > 0; < 1 flattens the histogram, > 1 spreads it.
    shift : float
        Offset in image units (e.g. HU).
    mean : float
        The fixed point of the scaling (the input's mean intensity when sampled
        by :class:`RandomContrast`), in image units.
    mask : str, optional
        Name of a label map restricting the change to its non-zero voxels.
    """

    scale: float = 1.0
    shift: float = 0.0
    mean: float = 0.0
    mask: str | None = None

    def __post_init__(self) -> None:
        self.scale = number(self.scale, "scale", SCALE.bounds)
        self.shift = number(self.shift, "shift", INTENSITY)
        self.mean = number(self.mean, "mean", INTENSITY)

    def point_ops(self, grid: Grid) -> FusedOps:
        ops = FusedOps()
        ops.add(AFFINE, self.scale, self.mean * (1.0 - self.scale) + self.shift)
        return ops

    def short(self) -> str:
        return f"contrast ×{self.scale:.2f} {self.shift:+.3g}"


@dataclass
class RandomContrast(RandomIntensityTransform):
    """Random contrast scaling about the mean intensity, and a random shift.

    Parameters
    ----------
    scale : float or [min, max]
        ``s`` means (1 - s, 1 + s) (0 <= s < 1); a pair is taken as is (both > 0).
    shift : float or [min, max]
        In image units; ``d`` means (-d, d).
    mask : str, optional
        Restrict to the non-zero voxels of this label map (the mean is then taken there).
    p : float
        Probability of applying.
    """

    scale: RangeLike = (0.9, 1.1)
    shift: RangeLike = 0.0
    mask: str | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        self._scale = SCALE.parse(self.scale, "scale")
        self._shift = SHIFT.parse(self.shift, "shift")

    def sample(self, rng: np.random.Generator, ctx: Context) -> Contrast:
        return Contrast(
            scale=float(rng.uniform(*self._scale)),
            shift=float(rng.uniform(*self._shift)),
            mean=intensity_mean(ctx, self.mask),
            mask=self.mask,
        )


# ---------------------------------------------------------------- brightness
@dataclass
class Brightness(PointwiseTransform):
    """``v' = v + shift`` (image units, e.g. HU).

    Parameters
    ----------
    shift : float
        Offset added to every voxel.
    mask : str, optional
        Restrict to the non-zero voxels of this label map.
    """

    shift: float = 0.0
    mask: str | None = None

    def __post_init__(self) -> None:
        self.shift = number(self.shift, "shift", INTENSITY)

    def point_ops(self, grid: Grid) -> FusedOps:
        ops = FusedOps()
        ops.add(AFFINE, 1.0, self.shift)
        return ops

    def short(self) -> str:
        return f"bright {self.shift:+.3g}"


@dataclass
class RandomBrightness(RandomIntensityTransform):
    """Random additive shift of the intensities.

    Parameters
    ----------
    shift : float or [min, max]
        In image units; ``d`` means (-d, d).  E.g. 50 for CT in HU, 0.1 for
        images normalised to [0, 1].
    mask : str, optional
    p : float
    """

    shift: RangeLike = 0.1
    mask: str | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        self._shift = SHIFT.parse(self.shift, "shift")

    def sample(self, rng: np.random.Generator, ctx: Context) -> Brightness:
        return Brightness(shift=float(rng.uniform(*self._shift)), mask=self.mask)


# ----------------------------------------------------------- histogram shift
_KINDS = ("linear", "pchip")
CurveKind = Literal["linear", "pchip"]
#: Control points of a curve.
CONTROL_POINTS = (3, 100)


def curve_coefficients(x: np.ndarray, y: np.ndarray, kind: str) -> np.ndarray:
    """(n - 1, 4) cubic coefficients per segment, highest power first, in ``t = v - x[i]``."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if kind == "linear":
        slope = np.diff(y) / np.diff(x)
        zero = np.zeros_like(slope)
        return np.stack([zero, zero, slope, y[:-1]], axis=1)
    from scipy.interpolate import PchipInterpolator

    return np.ascontiguousarray(PchipInterpolator(x, y).c.T)


@dataclass
class HistogramShift(IntensityTransform):
    """A monotone curve through control points ``(x[i], y[i])``; identity outside [x[0], x[-1]].

    Parameters
    ----------
    x : list of float
        Strictly increasing control abscissae in image units; ``x[0]`` and
        ``x[-1]`` are the intensity range the curve works on.
    y : list of float
        Non-decreasing control ordinates with ``y[0] == x[0]`` and
        ``y[-1] == x[-1]`` (end points fixed, so the map is continuous and
        monotone over all values).
    kind : {"pchip", "linear"}
        Monotone cubic (SciPy's PCHIP) or piecewise-linear interpolation.
    mask : str, optional
        Restrict to the non-zero voxels of this label map.
    """

    x: list[float] | tuple[float, ...] = (0.0, 1.0)
    y: list[float] | tuple[float, ...] = (0.0, 1.0)
    kind: CurveKind = "pchip"
    mask: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ParameterError(f"HistogramShift 'kind' must be one of {', '.join(_KINDS)}, got {self.kind!r}")
        sizes = range(2, CONTROL_POINTS[1] + 1)
        x = np.asarray(numbers(self.x, "x", INTENSITY, sizes=sizes), np.float64)
        y = np.asarray(numbers(self.y, "y", INTENSITY, sizes=sizes), np.float64)
        if x.size != y.size:
            raise ParameterError(f"HistogramShift 'x' and 'y' must be of equal length; got {x.size}, {y.size}")
        if not (np.diff(x) > 0).all():
            raise ParameterError(f"HistogramShift 'x' must be strictly increasing, got {x.tolist()}")
        if not (np.diff(y) >= 0).all():
            raise ParameterError(f"HistogramShift 'y' must be non-decreasing (monotone curve), got {y.tolist()}")
        tol = 1e-9 * max(1.0, abs(x[0]), abs(x[-1]))
        if abs(y[0] - x[0]) > tol or abs(y[-1] - x[-1]) > tol:
            raise ParameterError(
                "HistogramShift end points are fixed: need y[0] == x[0] and y[-1] == x[-1]"
                f", got {y[0]}, {y[-1]}"
            )
        self.x, self.y = x.tolist(), y.tolist()

    def apply_tensor(self, data: torch.Tensor, grid: Grid, image: Image, channel: int = 0) -> torch.Tensor:
        dev = data.device
        coef = torch.as_tensor(curve_coefficients(np.asarray(self.x), np.asarray(self.y), self.kind), device=dev)
        xs = torch.as_tensor(self.x, dtype=torch.float64, device=dev)
        v = data.reshape(-1).to(torch.float64)
        idx = torch.searchsorted(xs[1:-1].contiguous(), v.contiguous(), right=True)
        t = v - xs[idx]
        c = coef[idx]
        out = ((c[:, 0] * t + c[:, 1]) * t + c[:, 2]) * t + c[:, 3]
        out = torch.where((v >= xs[0]) & (v <= xs[-1]), out, v)
        return out.reshape(data.shape).to(torch.float32)

    def short(self) -> str:
        return f"hist curve {len(self.x)} pts"


@dataclass
class RandomHistogramShift(RandomIntensityTransform):
    """A random monotone intensity curve on the input's range [min, max] (end points fixed).

    ``n`` control points are evenly spaced on [lo, hi]; the inner ordinates are
    drawn one after the other, ``y[i]`` uniform in ``[y[i-1], x[i+1]]`` (as
    MONAI's ``RandHistogramShift``), which keeps the curve monotone; then
    ``y = x + strength * (y - x)``.

    Parameters
    ----------
    control_points : int or [min, max]
        Number of control points, end points included (>= 3); a pair is an
        inclusive integer range.
    strength : float
        In [0, 1]; 0 gives the identity, 1 the full random curve.
    kind : {"pchip", "linear"}
        Monotone cubic or piecewise-linear curve.
    mask : str, optional
    p : float
    """

    control_points: int | tuple[int, int] | list[int] = (5, 10)
    strength: float = 1.0
    kind: CurveKind = "pchip"
    mask: str | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        if self.kind not in _KINDS:
            raise ParameterError(f"RandomHistogramShift 'kind' must be one of {', '.join(_KINDS)}, got {self.kind!r}")
        self.strength = number(self.strength, "strength", (0.0, 1.0))
        self._n = Range("exact", bounds=CONTROL_POINTS).ints(self.control_points, "control_points")

    def sample(self, rng: np.random.Generator, ctx: Context) -> HistogramShift:
        lo, hi = intensity_range(ctx)
        n = int(rng.integers(self._n[0], self._n[1] + 1))
        ref = np.linspace(0.0, 1.0, n)
        y = ref.copy()
        for i in range(1, n - 1):
            y[i] = rng.uniform(y[i - 1], ref[i + 1])
        y = ref + float(self.strength) * (y - ref)
        xs = lo + (hi - lo) * ref
        ys = lo + (hi - lo) * y
        xs[-1] = ys[-1] = hi
        ys[0] = lo
        ys = np.maximum.accumulate(ys)  # guard against rounding
        return HistogramShift(x=xs.tolist(), y=ys.tolist(), kind=self.kind, mask=self.mask)
