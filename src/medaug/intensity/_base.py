"""Helpers shared by the intensity transforms."""

from __future__ import annotations

import numpy as np

from ..engine.transform import Context

__all__ = ["intensity_range"]


def intensity_range(ctx: Context) -> tuple[float, float]:
    """(min, max) of the intensity images, cached on the context.

    For a per-channel draw (``ctx.channel`` set) the range of that channel of
    every intensity image that has it (a FLAIR's range is not a T1's);
    otherwise the range over every channel of every intensity image.
    """
    cache = ctx.__dict__.setdefault("_intensity_ranges", {})
    if ctx.channel in cache:
        return cache[ctx.channel]
    lo, hi = np.inf, -np.inf
    for img in ctx.sample.intensity_images.values():
        if ctx.channel is not None and ctx.channel >= img.channels:
            continue
        arr = img.channel(ctx.channel).array if ctx.channel is not None else img.array
        lo, hi = min(lo, float(arr.min())), max(hi, float(arr.max()))
    if not np.isfinite(lo):
        lo, hi = 0.0, 1.0
    if hi <= lo:
        hi = lo + 1.0
    cache[ctx.channel] = (lo, hi)
    return lo, hi
