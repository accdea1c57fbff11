"""Preview pictures: the original and augmented samples side by side, as a radiologist reads them.

3D samples show the three median planes (sagittal, coronal, axial) in
radiological orientation (patient's right on the image's left, anterior up in
axial, superior up otherwise), with pixel aspect from the spacing so anatomy is
not squashed, and letters at the edges of the first row (R/L, A/P, S/I) read
from the grid's direction.  Tiles are drawn at least at the image's native
size (one screen pixel per voxel), small images enlarged to a readable size,
large ones reduced to a limit (:data:`TILE_PIXELS`).  Label maps are drawn as
contours, one colour per label value, named in a legend.  One window/level is
used for every tile (a named CT window in HU, percentiles of the foreground
for MRI), shown by a colour bar in the image's units, so that intensity
changes are visible.  A last column shows the deformation: lines every few
millimetres of the original grid, drawn where the same spatial transforms move
them (contours of the mapped coordinates, so they stay sharp on small images).
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

__all__ = ["preview", "to_lps", "window_for", "describe_history", "TILE_PIXELS", "UNITS"]

_LABEL_COLOURS = ["#ff3b30", "#34c759", "#0a84ff", "#ffcc00", "#af52de", "#ff9500", "#5ac8fa", "#ff2d55"]
#: Screen pixels of a tile's longer side: at least the image's own size, within (smallest, largest).
TILE_PIXELS = (192, 512)
#: The colour bar's label per modality.
UNITS = {"ct": "HU", "mri": "signal (arbitrary units)", "xray": "intensity (detector units)",
         "ultrasound": "echo amplitude (arbitrary units)"}
_DPI = 100
#: Letters at the (left, right, top, bottom) edges of each plane as drawn (radiological orientation).
_EDGES = {"sagittal": ("A", "P", "S", "I"), "coronal": ("R", "L", "S", "I"), "axial": ("R", "L", "A", "P")}


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


def _edges(grid: Grid, plane: str, modality: str | None) -> tuple[str, str, str, str] | None:
    """The orientation letters of a drawn plane, when the direction is (near) a permutation of the LPS axes.

    A 3D plane's letters follow from its name; a 2D image is taken as an axial slice only for CT and MRI
    (a radiograph's vertical axis is superior-inferior, which a 2D grid does not record).
    """
    d = grid.direction
    axes = [int(np.argmax(np.abs(d[:, a]))) for a in range(grid.ndim)]
    if sorted(axes) != list(range(grid.ndim)):
        return None
    if grid.ndim == 2:
        return _EDGES["axial"] if modality in ("ct", "mri") else None
    return _EDGES.get(plane)


def _scale(tiles: list[tuple[str, np.ndarray, float]]) -> float:
    """Screen pixels per voxel: native size, enlarged or reduced so the longest tile side is within TILE_PIXELS."""
    longest = max(max(sl.shape[0] * aspect, sl.shape[1]) for _, sl, aspect in tiles)
    lo, hi = TILE_PIXELS
    return min(max(1.0, lo / longest), hi / longest) if longest > hi else max(1.0, lo / longest)


def _coordinate_sample(grid: Grid) -> Sample:
    """Each voxel's physical x and y (mm) and a channel of ones (the inside), as a 3-channel image."""
    index = np.indices(grid.shape, dtype=np.float64).reshape(grid.ndim, -1)[::-1]  # (x, y[, z]) ITK order
    points = grid.index_to_physical(index.T)
    channels = [points[:, 0], points[:, 1], np.ones(len(points))]
    data = np.stack([c.reshape(grid.shape) for c in channels]).astype(np.float32)
    return Sample(image=Image(data, grid=grid, channel_axis=True))


def _draw_deformation(ax: Any, coords: Sample, history: Sequence[dict[str, Any]], step: float) -> str:
    """Draw lines every ``step`` mm of the original x and y where the sample's spatial transforms put them."""
    from ..engine.record import applied, replay
    from ..engine.registry import transform_class
    from ..engine.transform import SpatialTransform

    spatial = [h for h in applied(history) if issubclass(transform_class(h["name"]) or object, SpatialTransform)]
    moved = replay(spatial, fill=0.0, interpolation="linear")(coords) if spatial else coords
    image = moved["image"]
    planes = [_slices(image.channel(k))[-1] for k in range(3)]
    plane, inside, aspect = planes[2]
    # near the edge the interpolation mixes in the fill (0): dividing by the inside weight gives the coordinate back
    with np.errstate(invalid="ignore", divide="ignore"):
        x, y = (np.where(inside > 0.5, sl / inside, np.nan) for _, sl, _ in planes[:2])
    ax.imshow(np.where(inside > 0.5, 1.0, 0.82), cmap="gray", vmin=0, vmax=1, aspect=aspect, interpolation="nearest")
    h, w = inside.shape
    extent = (-0.5, w - 0.5, h - 0.5, -0.5)
    for values in (x, y):
        finite = values[np.isfinite(values)]
        if finite.size:
            levels = np.arange(np.floor(finite.min() / step), np.ceil(finite.max() / step) + 1) * step
            ax.contour(values, levels=levels, colors="black", linewidths=0.8, linestyles="solid", extent=extent,
                       origin="upper")
    return plane


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
        Outputs of a pipeline; their histories title the rows.
    path : str or Path
        Where to write the PNG.
    modality : str, optional
        Chooses the window (``ct``: a named HU window; others: foreground
        percentiles), the colour bar's unit (:data:`UNITS`) and, for a 2D
        image, whether the edges are lettered (CT and MRI slices only).
    window : str or (vmin, vmax), optional
        A named CT window (``brain``, ``soft_tissue``, ``lung``, ``bone``) or a range.
    deformation : bool
        Add a column with the original grid's lines moved by each sample's spatial transforms.
    channel : int, optional
        For a multi-channel image: draw this channel's planes.  By default every
        channel gets a column (its middle axial slice, or the 2D image), each
        with its own window, titled with the channel's name (no colour bar).

    Examples
    --------
    >>> import medaug, tempfile, pathlib
    >>> s = medaug.shepp_logan_2d(32)
    >>> out = medaug.preset("ct-light")(s, seed=0)
    >>> png = preview(s, [out], pathlib.Path(tempfile.mkdtemp()) / "p.png", modality="ct")
    >>> png.suffix
    '.png'
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

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
    label_values = [int(v) for v in np.unique(original[label_name].array) if v != 0] if label_name else []
    colour = {v: _LABEL_COLOURS[i % len(_LABEL_COLOURS)] for i, v in enumerate(label_values)}
    names = ref.channel_names or [f"channel {k}" for k in range(ref.channels)]

    def tiles_of(s: Sample) -> tuple[list[tuple[str, np.ndarray, float]], list[Any]]:
        if per_channel:  # one column per channel: its middle axial slice
            tiles = [(names[k], *_slices(s[ref_name].channel(k))[-1][1:]) for k in shown]
            labels = _slices(s[label_name])[-1:] * len(shown) if label_name and label_name in s else [None] * len(shown)
        else:
            tiles = _slices(s[ref_name].channel(shown[0]))
            labels = _slices(s[label_name]) if label_name and label_name in s else [None] * len(tiles)
        return tiles, labels

    first, _ = tiles_of(original)
    scale = _scale(first)
    sizes = [(sl.shape[1] * scale, sl.shape[0] * aspect * scale) for _, sl, aspect in first]  # (w, h) pixels
    if deformation:
        sizes.append(sizes[-1])
    gap, left, top, right, bottom = 12, 230, 64, 170, 16
    row_h = max(h for _, h in sizes)
    width = left + sum(w for w, _ in sizes) + gap * (len(sizes) - 1) + right
    height = top + len(samples) * row_h + gap * (len(samples) - 1) + bottom
    fig = plt.figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI)

    def box(x: float, y: float, w: float, h: float) -> list[float]:  # pixels from the top left -> figure fraction
        return [x / width, 1 - (y + h) / height, w / width, h / height]

    coords = _coordinate_sample(ref.grid) if deformation else None
    lines = int(np.clip(max(sizes[-1]) / 16, 4, 12))  # a line every 16 screen pixels or more, 4 to 12 across
    step = float(ref.grid.extent[:2].max()) / lines
    image_axes = None
    for r, s in enumerate(samples):
        tiles, labels = tiles_of(s)
        y0 = top + r * (row_h + gap)
        x0 = left
        for c, (w, h) in enumerate(sizes):
            ax = fig.add_axes(box(x0, y0 + (row_h - h) / 2, w, h))
            x0 += w + gap
            ax.set_xticks([])
            ax.set_yticks([])
            if c == len(tiles):  # the deformation column
                plane = _draw_deformation(ax, coords, s.history, step)  # type: ignore[arg-type]
                if r == 0:
                    ax.set_title("deformation" + (f" ({plane})" if plane else ""), fontsize=9)
                continue
            plane, sl, aspect = tiles[c]
            vmin, vmax = windows[c if per_channel else 0]
            shown_image = ax.imshow(sl, cmap="gray", vmin=vmin, vmax=vmax, aspect=aspect, interpolation="nearest")
            image_axes = image_axes or shown_image
            lab = labels[c]
            if lab is not None:
                for v in np.unique(lab[1]):
                    if v != 0:
                        ax.contour(lab[1] == v, levels=[0.5], colors=colour.get(int(v), "white"), linewidths=1.0)
            if r == 0:
                if plane:
                    ax.set_title(plane, fontsize=9)
                letters = None if per_channel else _edges(ref.grid, plane, modality)
                for text, (px, py, ha, va) in zip(letters or (), [(0.02, 0.5, "left", "center"),
                                                                  (0.98, 0.5, "right", "center"),
                                                                  (0.5, 0.98, "center", "top"),
                                                                  (0.5, 0.02, "center", "bottom")]):
                    ax.text(px, py, text, transform=ax.transAxes, ha=ha, va=va, color="#ffd60a", fontsize=9,
                            fontweight="bold")
        label = "original" if r == 0 else f"#{r}: " + describe_history(s.history)
        fig.text((left - 10) / width, 1 - (y0 + row_h / 2) / height, _wrap(label, 34), fontsize=8, ha="right",
                 va="center")
    x_right = (width - right + 24) / width
    if not per_channel and image_axes is not None:
        bar = fig.add_axes(box(width - right + 24, top, 16, min(row_h, 320)))
        fig.colorbar(image_axes, cax=bar).set_label(UNITS.get(modality or "", "intensity"), fontsize=8)
        bar.tick_params(labelsize=7)
    if label_values:
        handles = [Line2D([], [], color=colour[v], linewidth=2, label=f"label {v}") for v in label_values]
        fig.legend(handles=handles, loc="lower left", bbox_to_anchor=(x_right - 0.01, bottom / height), fontsize=8,
                   title=label_name, title_fontsize=8, frameon=False)
    vmin, vmax = windows[0]
    window_text = ("windows per channel" if per_channel else f"window [{vmin:.0f}, {vmax:.0f}]"
                   + (" HU" if modality == "ct" else ""))
    fig.suptitle(title or f"{original.metadata.get('case_id', '')}  {window_text}".strip(), fontsize=10,
                 y=1 - 12 / height, va="top")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=_DPI)
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
