"""CT windowing (window/level) and its random jitter; fusable (clip, then optionally an affine map)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..data.grid import Grid
from ..engine.pointwise import AFFINE, CLIP, FusedOps
from ..engine.ranges import BIG, INTENSITY, Range, RangeLike, number
from ..engine.transform import Context, PointwiseTransform, RandomIntensityTransform
from ..errors import ParameterError, did_you_mean

__all__ = ["CT_WINDOWS", "Window", "RandomWindow"]

#: Common CT windows: name -> (center / level, width), in HU.
CT_WINDOWS: dict[str, tuple[float, float]] = {
    "brain": (40, 80),
    "subdural": (75, 215),
    "stroke": (40, 40),
    "lung": (-600, 1500),
    "mediastinum": (50, 350),
    "soft_tissue": (50, 400),
    "liver": (60, 160),
    "bone": (400, 1800),
    "abdomen": (40, 400),
}
_OUTPUTS = ("hu", "unit")
Output = Literal["hu", "unit"]


def _named(name: str) -> tuple[float, float]:
    if not isinstance(name, str) or name not in CT_WINDOWS:
        raise ParameterError(
            f"unknown CT window {name!r}{did_you_mean(str(name), CT_WINDOWS)}"
            f"; known: {', '.join(CT_WINDOWS)}"
        )
    c, w = CT_WINDOWS[name]
    return float(c), float(w)


def _check_output(output: str, who: str) -> None:
    if output not in _OUTPUTS:
        raise ParameterError(f"{who} 'output' must be 'hu' or 'unit', got {output!r}")


@dataclass
class Window(PointwiseTransform):
    """Clip to the window ``[center - width/2, center + width/2]``, optionally mapped to [0, 1].

    Parameters
    ----------
    center, width : float
        Window level and width in image units (HU for CT); width > 0.
    output : {"hu", "unit"}
        ``hu``: values are clipped to the window and stay in HU; ``unit``: the
        window is mapped linearly onto [0, 1].
    name : str, optional
        A key of :data:`CT_WINDOWS` (``brain``, ``lung``, ``bone`` ...); it
        overrides ``center`` and ``width``, which then hold the resolved numbers.
    mask : str, optional
        Restrict to the non-zero voxels of this label map.
    """

    center: float | None = None
    width: float | None = None
    output: Output = "hu"
    name: str | None = None
    mask: str | None = None

    def __post_init__(self) -> None:
        _check_output(self.output, "Window")
        if self.name is not None:
            self.center, self.width = _named(self.name)
        if self.center is None or self.width is None:
            raise ParameterError("Window needs 'center' and 'width' (HU), or a 'name' from CT_WINDOWS")
        self.center = number(self.center, "center", INTENSITY)
        self.width = number(self.width, "width", (0.0, INTENSITY[1]), low_open=True)

    @property
    def bounds(self) -> tuple[float, float]:
        """(lower, upper) limits of the window."""
        return self.center - self.width / 2.0, self.center + self.width / 2.0

    def point_ops(self, grid: Grid) -> FusedOps:
        lo, hi = self.bounds
        ops = FusedOps()
        ops.add(CLIP, lo, hi)
        if self.output == "unit":
            ops.add(AFFINE, 1.0 / self.width, -lo / self.width)
        return ops

    def short(self) -> str:
        return f"W{self.width:.0f} L{self.center:.0f}"


@dataclass
class RandomWindow(RandomIntensityTransform):
    """CT window/level jitter around a named or given window.

    Parameters
    ----------
    window : str, optional
        A key of :data:`CT_WINDOWS`; ``soft_tissue`` when neither it nor
        ``center``/``width`` is given.
    center, width : float, optional
        The window in HU, instead of ``window``.
    center_jitter : float or [min, max]
        Added to the centre, in HU; ``d`` means (-d, d).
    width_jitter : float or [min, max]
        Relative change of the width: ``width * (1 + u)``; ``f`` means (-f, f), |u| < 1.
    output : {"hu", "unit"}
        ``hu`` keeps Hounsfield units (clipping only); ``unit`` maps the window to [0, 1].
    mask : str, optional
    p : float
    """

    window: str | None = None
    center: float | None = None
    width: float | None = None
    center_jitter: RangeLike = 0.0
    width_jitter: RangeLike = 0.0
    output: Output = "hu"
    mask: str | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        _check_output(self.output, "RandomWindow")
        given = self.center is not None or self.width is not None
        if self.window is not None and given:
            raise ParameterError("RandomWindow takes either 'window' (a name) or 'center' and 'width', not both")
        if given:
            w = Window(center=self.center, width=self.width)  # validate
            self._base = (float(w.center), float(w.width))  # type: ignore[arg-type]
        else:
            self._base = _named(self.window or "soft_tissue")
        self._dc = Range("symmetric", bounds=(-BIG, BIG)).parse(self.center_jitter, "center_jitter")
        self._dw = Range("symmetric", bounds=(-0.99, 0.99)).parse(self.width_jitter, "width_jitter")

    def sample(self, rng: np.random.Generator, ctx: Context) -> Window:
        c, w = self._base
        return Window(
            center=c + float(rng.uniform(*self._dc)),
            width=w * (1.0 + float(rng.uniform(*self._dw))),
            output=self.output,
            mask=self.mask,
        )
