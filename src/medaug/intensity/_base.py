"""Helpers shared by the intensity transforms."""

from __future__ import annotations

import numpy as np

from ..engine.transform import Context

__all__ = ["intensity_range"]


def intensity_range(ctx: Context) -> tuple[float, float]:
    """(min, max) over the sample's intensity images, cached on the context."""
    cached = getattr(ctx, "_intensity_range", None)
    if cached is not None:
        return cached
    lo, hi = np.inf, -np.inf
    for img in ctx.sample.intensity_images.values():
        arr = img.array
        lo, hi = min(lo, float(arr.min())), max(hi, float(arr.max()))
    if not np.isfinite(lo):
        lo, hi = 0.0, 1.0
    if hi <= lo:
        hi = lo + 1.0
    ctx._intensity_range = (lo, hi)  # type: ignore[attr-defined]
    return lo, hi
