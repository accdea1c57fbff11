"""Gamma: a power curve on the intensity range, which keeps its end points."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..data.grid import Grid
from ..engine.pointwise import GAMMA, FusedOps
from ..engine.ranges import INTENSITY, Range, RangeLike, number
from ..engine.transform import Context, PointwiseTransform, RandomIntensityTransform
from ..errors import ParameterError
from ._base import intensity_range

#: Natural log of gamma: gamma within [e^-3, e^3] ~ [0.05, 20].
LOG_GAMMA = Range("symmetric", bounds=(-3.0, 3.0))

__all__ = ["Gamma", "RandomGamma"]


@dataclass
class Gamma(PointwiseTransform):
    """``v' = lo + (hi - lo) * ((v - lo) / (hi - lo)) ** gamma``; values below ``lo`` map to ``lo``.

    Parameters
    ----------
    gamma : float
        Exponent, > 0; < 1 brightens mid-tones, > 1 darkens them.
    lo, hi : float
        The intensity range the curve works on (the input's min and max when
        sampled by :class:`RandomGamma`), so units (e.g. HU) are kept.
    mask : str, optional
        Name of a label map restricting the change to its non-zero voxels.
    """

    gamma: float = 1.0
    lo: float = 0.0
    hi: float = 1.0
    mask: str | None = None

    def __post_init__(self) -> None:
        self.gamma = number(self.gamma, "gamma", (0.01, 100.0))
        self.lo = number(self.lo, "lo", INTENSITY)
        self.hi = number(self.hi, "hi", INTENSITY)
        if not self.hi > self.lo:
            raise ParameterError(f"Gamma needs hi > lo, got lo={self.lo}, hi={self.hi}")

    def point_ops(self, grid: Grid) -> FusedOps:
        ops = FusedOps()
        ops.add(GAMMA, self.gamma, self.lo, self.hi)
        return ops

    def short(self) -> str:
        return f"γ {self.gamma:.2f}"


@dataclass
class RandomGamma(RandomIntensityTransform):
    """Random gamma with ``log(gamma)`` uniform in ``log_gamma`` (``d`` means (-d, d)).

    Parameters
    ----------
    log_gamma : float or [min, max]
        Range of the natural log of gamma; 0.3 gives gamma in about [0.74, 1.35].
    mask : str, optional
        Restrict to the non-zero voxels of this label map.
    p : float
        Probability of applying.
    """

    log_gamma: RangeLike = 0.3
    mask: str | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        self._range = LOG_GAMMA.parse(self.log_gamma, "log_gamma")

    def sample(self, rng: np.random.Generator, ctx: Context) -> Gamma:
        lo, hi = intensity_range(ctx)
        return Gamma(gamma=float(np.exp(rng.uniform(*self._range))), lo=lo, hi=hi, mask=self.mask)
