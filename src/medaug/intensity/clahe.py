"""Contrast-limited adaptive histogram equalisation (CLAHE) in the image's own units.

Wraps scikit-image's ``exposure.equalize_adapthist`` (2D and 3D), which works
on [0, 1]; :func:`equalize_adaptive` maps the input there and the result back
to image units.  It runs on CPU (NumPy); :class:`CLAHE` moves tensors to the
CPU and back to their device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..data.grid import Grid
from ..data.image import Image
from ..engine.ranges import INTENSITY, Range, RangeLike, number, numbers
from ..engine.transform import Context, IntensityTransform, RandomIntensityTransform
from ..errors import ParameterError

#: scikit-image's clip limit.
CLIP_LIMIT = Range("exact", bounds=(0.0, 1.0), low_open=True)
#: Contextual regions per axis.
TILES = (1, 64)

__all__ = ["equalize_adaptive", "CLAHE", "RandomCLAHE"]


def _tiles(tiles: int | Sequence[int], ndim: int) -> tuple[int, ...]:
    t = numbers(tiles, "tiles", TILES, sizes=(1, ndim), integer=True)
    if len(t) == 1:
        t = t * ndim
    return tuple(int(v) for v in t)


def equalize_adaptive(
    array: np.ndarray,
    clip_limit: float,
    tiles: int | tuple,
    lo: float | None = None,
    hi: float | None = None,
) -> np.ndarray:
    """CLAHE of a 2D or 3D array on the intensity range [lo, hi], returned in the input's units.

    Parameters
    ----------
    array : ndarray
        2D or 3D scalar image in any units (e.g. HU).
    clip_limit : float
        scikit-image's clipping limit in (0, 1]; higher gives more contrast.
    tiles : int or tuple of int
        Number of contextual regions per axis (one for all axes, or one per
        array axis, z/y/x order); scikit-image's ``kernel_size`` is
        ``ceil(shape / tiles)``.
    lo, hi : float, optional
        Intensity range to equalise; the array's min and max by default.
        Values outside it are clipped to it first.

    Returns
    -------
    ndarray
        float64, same shape.  With ``a = max(lo, min(array))`` and
        ``b = min(hi, max(array))`` (the clipped input's range), the output
        spans exactly [a, b] (its minimum is ``a`` and its maximum ``b``), so it
        always stays within [lo, hi] and in the input's units.  A constant input
        (``a == b``) is returned clipped, unchanged otherwise.

    Notes
    -----
    scikit-image quantises the normalised image to 16 bits, equalises it and
    stretches its result to [0, 1]; that is mapped linearly back onto [a, b].

    Examples
    --------
    >>> x = np.linspace(-1000.0, 1000.0, 64 * 64).reshape(64, 64)
    >>> y = equalize_adaptive(x, 0.02, 4)
    >>> float(y.min()), float(y.max())
    (-1000.0, 1000.0)
    """
    from skimage import exposure

    arr = np.asarray(array, np.float64)
    if arr.ndim not in (2, 3):
        raise ParameterError(f"equalize_adaptive needs a 2D or 3D array, got shape {arr.shape}")
    if not 0 < float(clip_limit) <= 1:
        raise ParameterError(f"'clip_limit' must be in (0, 1], got {clip_limit}")
    tl = _tiles(tiles, arr.ndim)
    lo = float(arr.min()) if lo is None else float(lo)
    hi = float(arr.max()) if hi is None else float(hi)
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi < lo:
        raise ParameterError(f"equalize_adaptive needs finite lo <= hi, got lo={lo}, hi={hi}")
    clipped = np.clip(arr, lo, hi)
    a, b = float(clipped.min()), float(clipped.max())
    if b <= a:
        return clipped
    unit = (clipped - a) / (b - a)
    # scikit-image treats a 3D array whose last axis has 3 or 4 entries as RGB(A): put a longer axis last
    order = list(range(arr.ndim))
    if arr.ndim == 3 and unit.shape[-1] in (3, 4):
        order = sorted(order, key=lambda i: unit.shape[i])
    work = unit.transpose(order)
    pad = 5 - work.shape[-1] if work.ndim == 3 and work.shape[-1] in (3, 4) else 0
    if pad:
        work = np.pad(work, [(0, 0), (0, 0), (0, pad)], mode="edge")
    kernel = [max(int(np.ceil(work.shape[i] / tl[order[i]])), 1) for i in range(work.ndim)]
    out = exposure.equalize_adapthist(work, kernel_size=kernel, clip_limit=float(clip_limit))
    if pad:
        out = out[..., : out.shape[-1] - pad]
    out = np.asarray(out, np.float64).transpose(np.argsort(order))
    return np.clip(a + (b - a) * out, a, b)


@dataclass
class CLAHE(IntensityTransform):
    """Contrast-limited adaptive histogram equalisation, output in image units (see :func:`equalize_adaptive`).

    Parameters
    ----------
    clip_limit : float
        In (0, 1]; higher gives more local contrast.
    tiles : int or list of int
        Contextual regions per axis (one for all, or one per array axis z/y/x).
    lo, hi : float, optional
        Intensity range to equalise (e.g. -1000, 1000 HU); each image's own
        min and max when omitted.  Values outside are clipped to it.
    mask : str, optional
        Restrict the change to the non-zero voxels of this label map.
    """

    clip_limit: float = 0.01
    tiles: int | list[int] = 8
    lo: float | None = None
    hi: float | None = None
    mask: str | None = None

    def __post_init__(self) -> None:
        self.clip_limit = number(self.clip_limit, "clip_limit", CLIP_LIMIT.bounds, low_open=True)
        tiles = numbers(self.tiles, "tiles", TILES, sizes=(1, 2, 3), integer=True)
        self.tiles = int(tiles[0]) if len(tiles) == 1 and not isinstance(self.tiles, (list, tuple)) else [int(v) for v in tiles]
        if self.lo is not None:
            self.lo = number(self.lo, "lo", INTENSITY)
        if self.hi is not None:
            self.hi = number(self.hi, "hi", INTENSITY)
        if self.lo is not None and self.hi is not None and not self.hi > self.lo:
            raise ParameterError(f"CLAHE needs hi > lo, got lo={self.lo}, hi={self.hi}")

    def apply_tensor(self, data: torch.Tensor, grid: Grid, image: Image, channel: int = 0) -> torch.Tensor:
        arr = data.detach().cpu().numpy()
        out = equalize_adaptive(arr, self.clip_limit, self.tiles, self.lo, self.hi)
        return torch.from_numpy(out.astype(np.float32)).to(data.device)

    def short(self) -> str:
        return f"CLAHE {self.clip_limit:.3f}"


@dataclass
class RandomCLAHE(RandomIntensityTransform):
    """Random CLAHE.

    Parameters
    ----------
    clip_limit : float or [min, max]
        Range of the clip limit, within (0, 1].
    tiles : int or [min, max]
        Number of tiles per axis; a pair is an inclusive integer range.
    lo, hi : float, optional
        Intensity range, passed to :class:`CLAHE`.
    mask : str, optional
    p : float
    """

    clip_limit: RangeLike = (0.01, 0.03)
    tiles: int | tuple[int, int] | list[int] = (4, 8)
    lo: float | None = None
    hi: float | None = None
    mask: str | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        self._clip = CLIP_LIMIT.parse(self.clip_limit, "clip_limit")
        self._tiles = Range("exact", bounds=TILES).ints(self.tiles, "tiles")
        CLAHE(lo=self.lo, hi=self.hi)

    def sample(self, rng: np.random.Generator, ctx: Context) -> CLAHE:
        return CLAHE(
            clip_limit=float(rng.uniform(*self._clip)),
            tiles=int(rng.integers(self._tiles[0], self._tiles[1] + 1)),
            lo=self.lo,
            hi=self.hi,
            mask=self.mask,
        )
