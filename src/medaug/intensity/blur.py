"""Gaussian blur and unsharp-mask sharpening with widths in millimetres.

Smoothing is separable: one 1D convolution per array axis
(``torch.nn.functional.conv1d``, reflect padding), so it runs on CPU or CUDA,
in 2D and 3D.  A width in mm becomes ``std / spacing`` voxels per axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data.grid import Grid
from ..data.image import Image
from ..engine.ranges import Numbers, PerAxisRange, Range, RangeLike, flag, for_axes, number, numbers
from ..engine.transform import Context, IntensityTransform, RandomIntensityTransform
from ..errors import ParameterError

__all__ = ["Blur", "RandomBlur", "Sharpen", "RandomSharpen", "gaussian_smooth", "sigma_voxels"]

#: kernel half-width in standard deviations
TRUNCATE = 3.0
#: Widths in mm.
STD_MM = (0.0, 1000.0)
STD = Range("from", bounds=STD_MM, unit="mm")
AMOUNT = Range("from", bounds=(0.0, 100.0))


def _kernel(sigma: float, radius: int, device: torch.device) -> torch.Tensor:
    x = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return (k / k.sum()).to(torch.float32)


def smooth_axis(data: torch.Tensor, sigma: float, axis: int, truncate: float = TRUNCATE) -> torch.Tensor:
    """Gaussian smoothing of ``data`` along one array axis, ``sigma`` in voxels (reflect padding)."""
    n = data.shape[axis]
    if sigma < 1e-3 or n < 2:
        return data
    radius = min(max(int(math.ceil(truncate * sigma)), 1), n - 1)  # reflect padding needs radius < n
    k = _kernel(sigma, radius, data.device)
    moved = data.movedim(axis, -1)
    shape = moved.shape
    flat = moved.reshape(-1, 1, n).to(torch.float32)
    out = F.conv1d(F.pad(flat, (radius, radius), mode="reflect"), k.view(1, 1, -1))
    return out.reshape(shape).movedim(-1, axis)


def gaussian_smooth(data: torch.Tensor, sigmas: Sequence[float], truncate: float = TRUNCATE) -> torch.Tensor:
    """Separable Gaussian smoothing; ``sigmas`` in voxels, one per array axis (z, y, x order)."""
    if len(sigmas) != data.ndim:
        raise ParameterError(f"need one sigma per array axis ({data.ndim}), got {len(sigmas)}")
    out = data.to(torch.float32)
    for axis, s in enumerate(sigmas):
        out = smooth_axis(out, float(s), axis, truncate)
    return out


def sigma_voxels(std_mm: Any, grid: Grid) -> list[float]:
    """Widths in mm (one, or one per index axis in x, y, z order) to voxels per array axis (z, y, x)."""
    s = for_axes(std_mm, grid.ndim, "std") / np.asarray(grid.spacing)
    return s[::-1].tolist()


def _check_std(std: Any, who: str) -> Numbers:
    values = numbers(std, "std", STD_MM, unit="mm")
    return values[0] if np.ndim(std) == 0 else values


@dataclass
class Blur(IntensityTransform):
    """Gaussian smoothing with standard deviation ``std`` in mm.

    Parameters
    ----------
    std : float or list of float
        Standard deviation in mm, one for all axes or one per index axis
        (x, y, z order, as ``spacing``).  Converted to voxels with the spacing.
    mask : str, optional
        Restrict the change to the non-zero voxels of this label map.
    """

    std: Numbers = 1.0
    mask: str | None = None

    def __post_init__(self) -> None:
        self.std = _check_std(self.std, "Blur")

    def apply_tensor(self, data: torch.Tensor, grid: Grid, image: Image, channel: int = 0) -> torch.Tensor:
        return gaussian_smooth(data, sigma_voxels(self.std, grid))

    def short(self) -> str:
        s = np.atleast_1d(self.std)
        return "blur " + "/".join(f"{v:.2g}" for v in s) + "mm"


@dataclass
class Sharpen(IntensityTransform):
    """Unsharp mask: ``v + amount * (v - blur(v))``, the blur of width ``std`` mm.

    Parameters
    ----------
    std : float or list of float
        Width of the Gaussian in mm (one, or one per index axis x, y, z).
    amount : float
        Gain of the detail layer, >= 0.
    mask : str, optional
    """

    std: Numbers = 1.0
    amount: float = 0.5
    mask: str | None = None

    def __post_init__(self) -> None:
        self.std = _check_std(self.std, "Sharpen")
        self.amount = number(self.amount, "amount", AMOUNT.bounds)

    def apply_tensor(self, data: torch.Tensor, grid: Grid, image: Image, channel: int = 0) -> torch.Tensor:
        v = data.to(torch.float32)
        return v + self.amount * (v - gaussian_smooth(v, sigma_voxels(self.std, grid)))

    def short(self) -> str:
        return f"sharpen ×{self.amount:.2f}"


def _draw_std(rng: np.random.Generator, ranges: list[tuple[float, float]], isotropic: bool) -> Any:
    if isotropic:
        return float(rng.uniform(*ranges[0]))
    return [float(rng.uniform(lo, hi)) for lo, hi in ranges]


def _std_ranges(std: Any, ndim: int) -> list[tuple[float, float]]:
    return STD.per_axis(std, "std", ndim)


@dataclass
class RandomBlur(RandomIntensityTransform):
    """Random Gaussian blur, ``std`` in mm.

    Parameters
    ----------
    std : float or [min, max]
        Range of the standard deviation in mm; ``s`` means [0, s].  One range
        per index axis (x, y, z) is also accepted (with ``isotropic=False``).
    isotropic : bool
        One physical width for all axes (True) or one drawn per axis.
    mask : str, optional
    p : float
    """

    std: PerAxisRange = (0.5, 2.0)
    isotropic: bool = True
    mask: str | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        STD.check_axes(self.std, "std", (2, 3))
        self.isotropic = flag(self.isotropic, "isotropic")

    def sample(self, rng: np.random.Generator, ctx: Context) -> Blur:
        return Blur(std=_draw_std(rng, _std_ranges(self.std, ctx.ndim), self.isotropic), mask=self.mask)


@dataclass
class RandomSharpen(RandomIntensityTransform):
    """Random unsharp masking.

    Parameters
    ----------
    std : float or [min, max]
        Width of the blur in mm; ``s`` means [0, s].
    amount : float or [min, max]
        Gain of the detail layer; ``a`` means [0, a].
    isotropic : bool
        One width for all axes, or one per axis.
    mask : str, optional
    p : float
    """

    std: PerAxisRange = (1.0, 3.0)
    amount: RangeLike = (0.2, 1.0)
    isotropic: bool = True
    mask: str | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        STD.check_axes(self.std, "std", (2, 3))
        self._amount = AMOUNT.parse(self.amount, "amount")
        self.isotropic = flag(self.isotropic, "isotropic")

    def sample(self, rng: np.random.Generator, ctx: Context) -> Sharpen:
        std = _draw_std(rng, _std_ranges(self.std, ctx.ndim), self.isotropic)
        return Sharpen(std=std, amount=float(rng.uniform(*self._amount)), mask=self.mask)
