"""Contrast, brightness and random monotone histogram curves.

:class:`Contrast` and :class:`Brightness` are affine maps of the grey levels
(fusable into the resampling sweep); :class:`HistogramShift` is a non-linear
monotone curve through control points, evaluated in torch (CPU or CUDA).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data.grid import Grid
from ..data.image import Image
from ..engine.pointwise import AFFINE, FusedOps
from ..engine.transform import Context, IntensityTransform, PointwiseTransform, RandomIntensityTransform, parse_range
from ..errors import ParameterError
from ._base import intensity_range

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
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise ParameterError(f"Contrast 'scale' must be a positive number, got {self.scale}")
        if not (np.isfinite(self.shift) and np.isfinite(self.mean)):
            raise ParameterError(f"Contrast 'shift' and 'mean' must be finite, got {self.shift}, {self.mean}")

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

    scale: Any = (0.9, 1.1)
    shift: Any = 0.0
    mask: str | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        s = self.scale
        if isinstance(s, (int, float)) and not isinstance(s, bool) and not 0 <= s < 1:
            raise ParameterError(f"'scale': a single number s means (1 - s, 1 + s) and must be in [0, 1), got {s}")
        self._scale = parse_range(s, "scale", around=1.0, min_value=1e-6)
        self._shift = parse_range(self.shift, "shift")

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
        if not np.isfinite(self.shift):
            raise ParameterError(f"Brightness 'shift' must be finite, got {self.shift}")

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

    shift: Any = 0.1
    mask: str | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        self._shift = parse_range(self.shift, "shift")

    def sample(self, rng: np.random.Generator, ctx: Context) -> Brightness:
        return Brightness(shift=float(rng.uniform(*self._shift)), mask=self.mask)


# ----------------------------------------------------------- histogram shift
_KINDS = ("linear", "pchip")


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

    x: Any = (0.0, 1.0)
    y: Any = (0.0, 1.0)
    kind: str = "pchip"
    mask: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ParameterError(f"HistogramShift 'kind' must be one of {', '.join(_KINDS)}, got {self.kind!r}")
        x = np.asarray(self.x, np.float64).ravel()
        y = np.asarray(self.y, np.float64).ravel()
        if x.size < 2 or x.size != y.size or not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ParameterError(
                "HistogramShift 'x' and 'y' must be >= 2 finite numbers each, of equal length"
                f"; got {x.size}, {y.size}"
            )
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

    control_points: Any = (5, 10)
    strength: float = 1.0
    kind: str = "pchip"
    mask: str | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        if self.kind not in _KINDS:
            raise ParameterError(f"RandomHistogramShift 'kind' must be one of {', '.join(_KINDS)}, got {self.kind!r}")
        if not 0.0 <= float(self.strength) <= 1.0:
            raise ParameterError(f"'strength' must be in [0, 1], got {self.strength}")
        cp = self.control_points
        pair = (cp, cp) if isinstance(cp, (int, np.integer)) and not isinstance(cp, bool) else cp
        try:
            lo, hi = (int(v) for v in pair)
            ok = all(float(v) == int(v) for v in pair)
        except (TypeError, ValueError):
            ok = False
        if not ok or lo < 3 or hi < lo:
            raise ParameterError(f"'control_points' must be an integer >= 3 or an integer range [min, max], got {cp!r}")
        self._n = (lo, hi)

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
