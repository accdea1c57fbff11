"""Preview pictures: the original and augmented samples side by side, as a radiologist reads them.

3D samples show the three median planes (sagittal, coronal, axial) in
radiological orientation (patient's right on the image's left, anterior up in
axial, superior up otherwise), with pixel aspect from the spacing so anatomy is
not squashed.  Label maps are drawn as coloured contours.  One window/level is
used for every tile (a named CT window in HU, percentiles for MRI) so that
intensity changes are visible.  A last column shows a grid pattern warped by
the same spatial transforms: the deformation itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..data.grid import Grid
from ..data.image import Image
from ..data.sample import Sample

__all__ = ["preview", "to_lps", "window_for", "grid_pattern", "describe_history"]

_CT_WINDOWS = {"brain": (40.0, 80.0), "soft_tissue": (50.0, 400.0), "lung": (-600.0, 1500.0), "bone": (400.0, 1800.0)}
_LABEL_COLOURS = ["#ff3b30", "#34c759", "#0a84ff", "#ffcc00", "#af52de", "#ff9500", "#5ac8fa", "#ff2d55"]


def to_lps(array: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Permute/flip a (z, y, x) array so its axes run along physical z, y, x (LPS); also return the spacing.

    Oblique directions are snapped to the nearest physical axis (for display only).
    """
    d = grid.direction
    n = grid.ndim
    phys_of_index = [int(np.argmax(np.abs(d[:, a]))) for a in range(n)]  # index axis (x, y, z) -> physical axis
    if sorted(phys_of_index) != list(range(n)):
        return array, np.asarray(grid.spacing[::-1])
    arr = array
    order = [n - 1 - phys_of_index[n - 1 - k] for k in range(n)]  # array axis k -> target array axis
    arr = np.moveaxis(arr, list(range(n)), order)
    spacing_arr = np.empty(n)
    for k in range(n):
        a = n - 1 - k  # ITK index axis of array axis k
        p = phys_of_index[a]
        spacing_arr[n - 1 - p] = grid.spacing[a]
        if d[p, a] < 0:
            arr = np.flip(arr, axis=n - 1 - p)
    return arr, spacing_arr


def window_for(image: Image, modality: str | None, window: str | tuple[float, float] | None = None) -> tuple[float, float]:
    """Display range (vmin, vmax): a named CT window in HU, or the 1st-99th percentiles."""
    if isinstance(window, tuple):
        return window
    if modality == "ct" or window in _CT_WINDOWS:
        c, w = _CT_WINDOWS.get(window or "soft_tissue", _CT_WINDOWS["soft_tissue"])
        if window is None and image.array.max() > 1000:  # bone present: a wider window shows it
            c, w = 300.0, 2000.0
        return c - w / 2, c + w / 2
    lo, hi = np.percentile(image.array, [1, 99.5])
    return float(lo), float(hi if hi > lo else lo + 1)


def grid_pattern(grid: Grid, spacing_mm: float | None = None) -> Image:
    """Grid lines every ``spacing_mm`` along the in-plane (x, y) axes (default: 1/12 of the field of view).

    In 3D the lines are extruded along z, so an axial plane shows a square grid.
    """
    n = grid.ndim
    sp = np.asarray(grid.spacing[::-1])  # array order
    step = spacing_mm or float(grid.extent[:2].max()) / 12.0
    step = max(float(np.round(step / sp[-2:].min())), 2.0) * float(sp[-2:].min())
    lines = np.zeros(grid.shape, bool)
    for axis in (n - 2, n - 1):
        idx = np.arange(grid.shape[axis]) * sp[axis]
        on = (idx % step) < max(sp[axis], step / 10.0)
        shape = [1] * n
        shape[axis] = -1
        lines |= on.reshape(shape)
    return Image(lines.astype(np.float32), grid=grid)


def describe_history(history: Sequence[dict[str, Any]]) -> str:
    """Short form of the applied transforms, e.g. ``rot 3.2°, scale 1.05, γ 0.90``."""
    from ..engine.record import applied
    from ..engine.registry import transform_class

    parts = []
    for rec in applied(history):
        cls = transform_class(rec["name"])
        try:
            parts.append(cls(**rec["params"]).short() if cls else rec["name"])
        except Exception:  # a record from another version: show its name
            parts.append(rec["name"])
    return ", ".join(parts) or "original"


def _planes(arr: np.ndarray, spacing: np.ndarray) -> list[tuple[str, np.ndarray, float]]:
    """(name, 2D slice for imshow, aspect) of the three median planes of an LPS-ordered volume."""
    z, y, x = (s // 2 for s in arr.shape)
    sz, sy, sx = spacing
    return [
        ("sagittal", np.flipud(arr[:, :, x]), sz / sy),
        ("coronal", np.flipud(arr[:, y, :]), sz / sx),
        ("axial", arr[z], sy / sx),
    ]


def _slices(image: Image) -> list[tuple[str, np.ndarray, float]]:
    arr, spacing = to_lps(image.array, image.grid)
    if image.ndim == 2:
        return [("", arr, spacing[0] / spacing[1])]
    return _planes(arr, spacing)


def preview(
    original: Sample,
    augmented: Sequence[Sample],
    path: str | Path,
    *,
    modality: str | None = None,
    window: str | tuple[float, float] | None = None,
    deformation: bool = True,
    title: str | None = None,
) -> Path:
    """Draw the original and the augmented samples into one PNG and return its path.

    Parameters
    ----------
    original : Sample
        The input sample.
    augmented : sequence of Sample
        Outputs of a pipeline; their histories title the tiles.
    path : str or Path
        Where to write the PNG.
    modality : str, optional
        Chooses the window: ``ct`` uses a named HU window, others percentiles.
    window : str or (vmin, vmax), optional
        A named CT window (``brain``, ``soft_tissue``, ``lung``, ``bone``) or a range.
    deformation : bool
        Add a column with a grid pattern warped by each sample's spatial transforms.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..engine.record import applied, replay
    from ..engine.registry import transform_class
    from ..engine.transform import SpatialTransform

    modality = modality or original.metadata.get("modality")
    ref = original.reference
    ref_name = next(n for n, v in original.items() if v is ref)
    vmin, vmax = window_for(ref, modality, window)
    samples = [original, *augmented]
    label_name = next(iter(original.label_maps), None)
    ncols = len(_slices(ref)) + (1 if deformation else 0)
    nrows = len(samples)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.6 * nrows + 0.4), squeeze=False)
    pattern = Sample(image=grid_pattern(ref.grid))
    for r, s in enumerate(samples):
        tiles = _slices(s[ref_name])
        labels = _slices(s[label_name]) if label_name and label_name in s else [None] * len(tiles)
        for c, ((plane, sl, aspect), lab) in enumerate(zip(tiles, labels)):
            ax = axes[r, c]
            ax.imshow(sl, cmap="gray", vmin=vmin, vmax=vmax, aspect=aspect, interpolation="nearest")
            if lab is not None:
                values = [v for v in np.unique(lab[1]) if v != 0]
                for i, v in enumerate(values):
                    ax.contour(lab[1] == v, levels=[0.5], colors=_LABEL_COLOURS[i % len(_LABEL_COLOURS)], linewidths=0.8)
            if r == 0 and plane:
                ax.set_title(plane, fontsize=9)
        if deformation:
            ax = axes[r, ncols - 1]
            spatial = [h for h in applied(s.history) if issubclass(transform_class(h["name"]) or object, SpatialTransform)]
            warped = replay(spatial, fill=0.0)(pattern) if spatial else pattern
            plane, sl, aspect = _slices(warped["image"])[-1]
            ax.imshow(sl, cmap="gray_r", vmin=0, vmax=1, aspect=aspect, interpolation="bilinear")
            if r == 0:
                ax.set_title("deformation" + (f" ({plane})" if plane else ""), fontsize=9)
        label = "original" if r == 0 else f"#{r}: " + describe_history(s.history)
        axes[r, 0].set_ylabel(_wrap(label, 34), fontsize=7, rotation=0, ha="right", va="center", labelpad=4)
        for ax in axes[r]:
            ax.set_xticks([])
            ax.set_yticks([])
    window_text = f"window [{vmin:.0f}, {vmax:.0f}]" + (" HU" if modality == "ct" else "")
    fig.suptitle(title or f"{original.metadata.get('case_id', '')}  {window_text}".strip(), fontsize=10)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def _wrap(text: str, width: int) -> str:
    words, lines, cur = text.split(", "), [], ""
    for w in words:
        if cur and len(cur) + len(w) + 2 > width:
            lines.append(cur + ",")
            cur = w
        else:
            cur = f"{cur}, {w}" if cur else w
    lines.append(cur)
    return "\n".join(lines)
