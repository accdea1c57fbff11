"""Display windows: named CT windows in HU and a percentile window for every other modality.

A window is a (lower, upper) display range in image units: values at or below
``lower`` are black, at or above ``upper`` white.  Radiologists name CT windows
by level (centre) and width; the values are :data:`medaug.intensity.window.CT_WINDOWS`
(level, width in HU), of which the viewer offers :data:`VIEWER_CT_WINDOWS`.

The automatic window takes percentiles of the *foreground* voxels only (those
above 5 % of the robust range): a head MRI is mostly dark background, and
percentiles over every voxel put the upper end inside the brightest tissue
(white matter on T1), which then saturates.
"""

from __future__ import annotations

import numpy as np

from ..intensity.window import CT_WINDOWS

__all__ = ["VIEWER_CT_WINDOWS", "auto_window", "window_presets", "window_range"]

#: The CT windows a reader can pick, the default first.
VIEWER_CT_WINDOWS = ("abdomen", "brain", "subdural", "lung", "bone")
#: Lower and upper percentile of the foreground.  The upper one is 99.9: at 99.5 the bright white matter of
#: nibabel's T1 head (anatomical.nii) sits at 91 % grey, nearly white; at 99.9 at 81 %, and only scalp fat and
#: vessels reach white (tests/test_preview.py).
_AUTO_PERCENTILES = (0.5, 99.9)
_FOREGROUND_FRACTION = 0.05


def window_range(level: float, width: float) -> tuple[float, float]:
    """(lower, upper) of a window given as level and width."""
    return level - width / 2.0, level + width / 2.0


def auto_window(array: np.ndarray) -> tuple[float, float]:
    """The 0.5th and 99.9th percentiles of the foreground voxels of ``array`` (any shape), in image units.

    Foreground: voxels above ``p0.1 + 0.05 * (p99.9 - p0.1)``; when fewer than 1 % of the voxels
    are foreground (a nearly empty image) every voxel counts.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.zeros((20, 20)); img[5:15, 5:15] = np.linspace(100, 200, 100).reshape(10, 10)
    >>> [round(v) for v in auto_window(img)]  # the square, not the zero background
    [100, 200]
    """
    values = np.asarray(array, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(values, [0.1, 99.9])
    foreground = values[values > lo + _FOREGROUND_FRACTION * (hi - lo)]
    if foreground.size >= 0.01 * values.size:
        values = foreground
    a, b = (float(v) for v in np.percentile(values, _AUTO_PERCENTILES))
    return (a, b) if b > a else (a, a + 1.0)


def window_presets(modality: str | None, array: np.ndarray) -> list[tuple[str, float, float]]:
    """The windows offered for an image, as (name, level, width); the first is the default.

    CT: :data:`VIEWER_CT_WINDOWS`, then ``auto``.  Any other modality
    (or unknown): ``auto`` (foreground percentiles, see :func:`auto_window`) and ``full`` (minimum to maximum).
    """
    lo, hi = auto_window(array)
    auto = ("auto", (lo + hi) / 2.0, hi - lo)
    if modality == "ct":
        return [(name, *map(float, CT_WINDOWS[name])) for name in VIEWER_CT_WINDOWS] + [auto]
    finite = np.asarray(array)[np.isfinite(array)]
    a, b = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    return [auto, ("full", (a + b) / 2.0, max(b - a, 1e-6))]
