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
from ..intensity.window import CT_WINDOWS as _CT_WINDOWS
from .windows import auto_window, window_range

__all__ = ["preview", "to_lps", "window_for", "grid_pattern", "describe_history"]

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
    """Display range (vmin, vmax): a named CT window in HU, or the foreground percentiles (:func:`.windows.auto_window`)."""
    if isinstance(window, tuple):
        return window
    if modality == "ct" or window in _CT_WINDOWS:
        c, w = _CT_WINDOWS.get(window or "soft_tissue", _CT_WINDOWS["soft_tissue"])
        if window is None and image.array.max() > 1000:  # bone present: a wider window shows it
            c, w = 300.0, 2000.0
        return window_range(c, w)
    return auto_window(image.array)


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
    channel: int | None = None,
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
    channel : int, optional
        For a multi-channel image: draw this channel's planes.  By default every
        channel gets a column (its middle axial slice, or the 2D image), each
        with its own window, titled with the channel's name.
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
    if channel is not None and not 0 <= channel < ref.channels:
        from ..errors import ParameterError

        raise ParameterError(f"channel {channel} does not exist: the image has {ref.channels} channel(s)")
    per_channel = ref.channels > 1 and channel is None
    shown = [channel or 0] if not per_channel else list(range(ref.channels))
    windows = [window_for(ref.channel(k), modality, window) for k in shown]
    samples = [original, *augmented]
    label_name = next(iter(original.label_maps), None)
    ncols = (len(shown) if per_channel else len(_slices(ref.channel(shown[0])))) + (1 if deformation else 0)
    nrows = len(samples)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.6 * nrows + 0.4), squeeze=False)
    pattern = Sample(image=grid_pattern(ref.grid))
    names = ref.channel_names or [f"channel {k}" for k in range(ref.channels)]
    for r, s in enumerate(samples):
        if per_channel:  # one column per channel: its middle axial slice
            tiles = [(names[k], *_slices(s[ref_name].channel(k))[-1][1:]) for k in shown]
            lab_tiles = _slices(s[label_name])[-1:] * len(shown) if label_name and label_name in s else [None] * len(shown)
        else:
            tiles = _slices(s[ref_name].channel(shown[0]))
            lab_tiles = _slices(s[label_name]) if label_name and label_name in s else [None] * len(tiles)
        for c, ((plane, sl, aspect), lab) in enumerate(zip(tiles, lab_tiles)):
            ax = axes[r, c]
            vmin, vmax = windows[c if per_channel else 0]
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
    vmin, vmax = windows[0]
    window_text = ("windows per channel" if per_channel else f"window [{vmin:.0f}, {vmax:.0f}]"
                   + (" HU" if modality == "ct" else ""))
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
