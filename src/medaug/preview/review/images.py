"""What the review page draws: planes of an image in radiological orientation, as raw voxels, and their description.

Orientation
-----------
A volume is turned (axes permuted and flipped, never resampled) so that its
array axes run along physical superior, posterior and left (ITK/LPS) as far as
the direction cosines allow (:func:`medaug.preview.figures.to_lps`; an oblique
axis goes with the physical axis it is closest to).  Planes are then cut as
radiologists read them: axial with the patient's right on the left of the
screen and anterior up, coronal and sagittal with superior up (sagittal:
anterior on the left).  The orientation markers at the four edges come from the
true direction cosines, so an oblique acquisition shows e.g. ``LA`` where the
right edge points left and somewhat anterior.  A 2D image is one plane; for
X-ray its second axis is read as head (up) to feet, otherwise as anterior to
posterior (an axial slice).

Binary planes
-------------
``plane`` returns the voxels of one plane, row-major, top row first,
little-endian: ``int16`` for integer images whose values fit, otherwise
``float32``; label maps always ``int16``.  :meth:`ImageSource.meta` tells the
page the type, the plane shapes (rows, columns), pixel spacing in mm (row,
column), the number of slices, the markers, the value range, the unit (HU for
CT) and the window presets (:func:`medaug.preview.windows.window_presets`).

Images with channels (``Image.channels > 1``, array (C, z, y, x)) are served
one channel at a time; channel 0 by default.  An nnU-Net case stored as one
file per channel (``CASE_0000``, ``CASE_0001``, ...) is one image of channels,
and the channel names come from the dataset's ``dataset.json`` when it has one
(MSD ``modality`` or nnU-Net ``channel_names``).

Every request resolves the file's path again and refuses it (403) when it no
longer resolves to the path found at start, e.g. a symlink swapped in.
"""

from __future__ import annotations

import io
import math
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from ...data.grid import Grid
from ...errors import MedaugError
from ..figures import to_lps
from ..windows import window_presets, window_range
from ._http import HttpError

__all__ = ["PLANES", "ImageRef", "ImageSource", "markers", "plane_of"]

#: Plane names by axis of a 3D volume in display orientation; a 2D image has the one plane "image".
PLANES = ("axial", "coronal", "sagittal")
_LETTERS = (("R", "L"), ("A", "P"), ("I", "S"))  # (negative, positive) end of physical x, y, z (LPS)
_MARKER_MIN = 0.3  # a direction component below this does not get a letter
_UNITS = {"ct": "HU"}

T = TypeVar("T")


@dataclass(frozen=True)
class ImageRef:
    """An image the page may show and its label map (paths resolved when the manifest was read)."""

    image: Path
    label: Path | None = None


class _LRU:
    """A small thread-safe LRU cache."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: OrderedDict[Any, Any] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Any, make: Callable[[], T]) -> T:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        value = make()
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value


@dataclass(frozen=True)
class _Oriented:
    """A (channel of an) image in display orientation."""

    array: np.ndarray  # (z, y, x) along S, P, L; or (y, x)
    spacing: np.ndarray  # mm, array order
    vectors: np.ndarray  # (ndim, 3): physical (LPS) unit vector of each array axis, index increasing


def _axis_vectors(grid: Grid, xray: bool) -> np.ndarray:
    """Physical unit vector (x, y, z) of each array axis after :func:`to_lps`, in array order."""
    d = grid.direction
    n = grid.ndim
    phys_of_index = [int(np.argmax(np.abs(d[:, a]))) for a in range(n)]  # as to_lps
    turned = sorted(phys_of_index) == list(range(n))
    out = np.zeros((n, 3))
    for k in range(n):
        if turned:
            a = phys_of_index.index(n - 1 - k)  # the index axis moved to array axis k
            vec = d[:, a] * np.sign(d[n - 1 - k, a])
        else:
            vec = d[:, n - 1 - k]
        if n == 2:  # a 2D grid has physical (x, y); an X-ray's y runs from head to feet
            vec = np.array([vec[0], 0.0, -vec[1]]) if xray else np.array([vec[0], vec[1], 0.0])
        out[k] = vec
    return out


def _orient(array: np.ndarray, grid: Grid, xray: bool) -> _Oriented:
    arr, spacing = to_lps(array, grid)
    return _Oriented(np.ascontiguousarray(arr), np.asarray(spacing, float), _axis_vectors(grid, xray))


def markers(down: np.ndarray, right: np.ndarray) -> dict[str, str]:
    """The letters at the four edges of a plane whose rows run along ``down`` and columns along ``right`` (LPS).

    Examples
    --------
    >>> markers(np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0]))  # an axial slice
    {'left': 'R', 'right': 'L', 'top': 'A', 'bottom': 'P'}
    """

    def letters(v: np.ndarray) -> str:
        order = np.argsort(-np.abs(v))
        return "".join(_LETTERS[i][int(v[i] > 0)] for i in order if abs(v[i]) >= _MARKER_MIN)

    return {"left": letters(-right), "right": letters(right), "top": letters(-down), "bottom": letters(down)}


def plane_of(o: _Oriented, axis: int, index: int) -> tuple[np.ndarray, tuple[float, float], dict[str, str]]:
    """One plane of an oriented image: voxels (rows top to bottom), pixel spacing (row, column) in mm, markers."""
    a, sp, v = o.array, o.spacing, o.vectors
    if a.ndim == 2:
        return a, (float(sp[0]), float(sp[1])), markers(v[0], v[1])
    if axis == 0:
        return a[index], (float(sp[1]), float(sp[2])), markers(v[1], v[2])
    if axis == 1:
        return np.flipud(a[:, index, :]), (float(sp[0]), float(sp[2])), markers(-v[0], v[2])
    return np.flipud(a[:, :, index]), (float(sp[0]), float(sp[1])), markers(-v[0], v[1])


def _channel(array: np.ndarray, grid: Grid, channel: int) -> np.ndarray:
    """Channel ``channel`` of a (C, z, y, x) array; a scalar image has only channel 0."""
    channels = array.shape[0] if array.ndim == grid.ndim + 1 else 1
    if not 0 <= channel < channels:
        raise HttpError(400, f"channel must be in 0..{channels - 1}, got {channel}")
    return array[channel] if channels > 1 or array.ndim == grid.ndim + 1 else array


def _encoding(array: np.ndarray) -> str:
    if array.dtype.kind in "iub" and array.size and array.min() >= -32768 and array.max() <= 32767:
        return "int16"
    return "float32"


def _unchanged(path: Path) -> Path:
    """``path`` (resolved when the manifest was read) if it still resolves to itself, else 403.

    A symlink swapped in after start, for the file or any folder above it, changes the resolution.
    """
    try:
        now = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        now = None
    if now != path:
        raise HttpError(403, "the image file was replaced by a link since the server started; restart it")
    return path


def _dataset_channel_names(path: Path) -> list[str]:
    """The channel names the ``dataset.json`` of the image's dataset (``DATASET/imagesTr/file``) gives; [] when none."""
    from ...datasets.nnunet import read_dataset_json

    try:
        info = read_dataset_json(path.parent.parent)
    except MedaugError:
        return []
    return list(info.channel_names.values()) if info is not None else []


def _channel_files(path: Path) -> list[Path]:
    """The files of an nnU-Net case's channels, given its channel-0 file; ``[path]`` for any other image."""
    m = re.match(r"^(.+)_0000(\..+)$", path.name)
    names = _dataset_channel_names(path) if m else []
    if m is None or len(names) < 2:
        return [path]
    return [path.with_name(f"{m[1]}_{k:04d}{m[2]}") for k in range(len(names))]


class ImageSource:
    """Loads images (cached), and cuts and describes their planes for the page.

    Parameters
    ----------
    modality : str, optional
        ``ct``, ``mri``, ``xray``, ...: the window presets, the unit (HU for CT), and how a 2D image is oriented.
        When None, the first image loaded decides: CT when it holds air (at most -900), else unknown.
    cache_size : int
        Images kept in memory.
    """

    def __init__(self, modality: str | None, cache_size: int = 16) -> None:
        self.modality = modality
        self._guess = modality is None
        self.images = _LRU(cache_size)
        self.derived = _LRU(4 * cache_size)  # oriented arrays, metadata

    # ------------------------------------------------------------ loading
    def load(self, path: Path, *, label: bool = False, what: str = "image"):
        """The image at ``path`` (checked at every call, loaded once); 404 naming ``what``, not the file.

        The channel-0 file of an nnU-Net case (``CASE_0000.nii.gz`` in a
        dataset whose ``dataset.json`` names several channels) loads with its
        sibling channel files as one image of channels.
        """
        from ...data.image import Image
        from ...data.io import load

        files = [path] if label else _channel_files(path)
        for f in files:
            _unchanged(f)
        try:
            img = self.images.get((path, label), lambda: (
                load(path, label=label) if len(files) == 1 else Image.stack([load(f) for f in files])))
        except MedaugError as exc:  # the reason (with the path) for the terminal; the page gets no path
            print(f"medaug review: {exc}", file=sys.stderr)
            raise HttpError(404, f"{what} cannot be read") from None
        if self._guess and not label:  # one modality for the whole folder, whichever image comes first
            self._guess = False
            self.modality = "ct" if float(np.min(img.array)) <= -900 else None
        return img

    def _oriented(self, path: Path, channel: int, *, label: bool, what: str) -> _Oriented:
        img = self.load(path, label=label, what=what)
        key = ("oriented", path, channel, label)
        return self.derived.get(key, lambda: _orient(_channel(img.array, img.grid, channel), img.grid,
                                                     self.modality == "xray"))

    def _label_of(self, ref: ImageRef, what: str) -> Path | None:
        """The label map's path when it exists and has the image's grid shape."""
        if ref.label is None or not ref.label.exists():
            return None
        img = self.load(ref.image, what=what)
        lab = self.load(ref.label, label=True, what=f"the label map of {what}")
        return ref.label if lab.grid.shape == img.grid.shape else None

    # ------------------------------------------------------------ routes
    def meta(self, ref: ImageRef, channel: int = 0, *, what: str = "image", with_labels: bool = True) -> dict[str, Any]:
        """The description the page needs to draw the image (see the module doc)."""
        return self.derived.get(("meta", ref, channel, with_labels), lambda: self._meta(ref, channel, what, with_labels))

    def _meta(self, ref: ImageRef, channel: int, what: str, with_labels: bool) -> dict[str, Any]:
        img = self.load(ref.image, what=what)
        o = self._oriented(ref.image, channel, label=False, what=what)
        arr = o.array
        planes = []
        axes = range(3) if arr.ndim == 3 else range(1)
        for axis in axes:
            plane, spacing, marks = plane_of(o, axis, 0)
            planes.append({"name": PLANES[axis] if arr.ndim == 3 else "image", "axis": axis, "shape": list(plane.shape),
                           "spacing": [round(s, 4) for s in spacing], "slices": int(arr.shape[axis]) if arr.ndim == 3 else 1,
                           "markers": marks})
        finite = arr[np.isfinite(arr)] if arr.dtype.kind == "f" else arr
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        labels: list[int] = []
        label_path = self._label_of(ref, what) if with_labels else None
        if label_path is not None:
            values = np.unique(self._oriented(label_path, 0, label=True, what=what).array)
            labels = [int(v) for v in values if v != 0]
        channels = img.array.shape[0] if img.array.ndim == img.grid.ndim + 1 else 1
        names = _dataset_channel_names(ref.image)
        return {
            "ndim": arr.ndim, "channels": int(channels), "channel": channel, "dtype": _encoding(arr),
            "channel_names": names if len(names) == channels else [f"channel {c}" for c in range(channels)],
            "modality": self.modality, "unit": _UNITS.get(self.modality or "", ""), "range": [lo, hi],
            "windows": [{"name": n, "level": round(c, 3), "width": round(w, 3)} for n, c, w in window_presets(self.modality, arr)],
            "planes": planes, "labels": labels, "label_dtype": "int16",
            "spacing": [round(s, 4) for s in img.grid.spacing],
            "direction": [round(float(c), 4) for c in img.grid.direction.ravel()],
        }

    def plane(self, ref: ImageRef, axis: int, index: int | None, channel: int = 0, *, layer: str = "image",
              what: str = "image") -> bytes:
        """One plane as little-endian bytes (see the module doc); ``layer`` is ``image`` or ``label``."""
        if layer == "label":
            path = self._label_of(ref, what)
            if path is None:
                raise HttpError(404, f"{what} has no label map")
            o = self._oriented(path, 0, label=True, what=what)
            dtype = "<i2"
        elif layer == "image":
            o = self._oriented(ref.image, channel, label=False, what=what)
            dtype = "<i2" if _encoding(o.array) == "int16" else "<f4"
        else:
            raise HttpError(400, "layer must be 'image' or 'label'")
        plane, _, _ = plane_of(o, axis, self._index(o, axis, index))
        return np.ascontiguousarray(plane, dtype=dtype).tobytes()

    def thumbnail(self, ref: ImageRef, axis: int, index: int | None, window: tuple[float, float] | None, *,
                  what: str = "image") -> bytes:
        """One plane as a greyscale PNG (square pixels, at least 256 pixels on its longer side)."""
        from PIL import Image as PILImage

        o = self._oriented(ref.image, 0, label=False, what=what)
        plane, (sy, sx), _ = plane_of(o, axis, self._index(o, axis, index))
        if window is None:
            _, level, width = window_presets(self.modality, o.array)[0]
            window = window_range(level, width)
        lo, hi = window
        grey = np.clip((plane.astype(np.float32) - lo) / (hi - lo) * 255.0, 0, 255).astype(np.uint8)
        h, w = grey.shape
        height = max(1, round(h * sy / sx))
        factor = max(1, math.ceil(256 / max(height, w)))
        pic = PILImage.fromarray(np.ascontiguousarray(grey)).resize((w * factor, height * factor), PILImage.NEAREST)
        buf = io.BytesIO()
        pic.save(buf, format="PNG")
        return buf.getvalue()

    @staticmethod
    def _index(o: _Oriented, axis: int, index: int | None) -> int:
        if o.array.ndim == 2:
            if axis != 0:
                raise HttpError(400, "a 2D image has only axis 0")
            return 0
        if axis not in (0, 1, 2):
            raise HttpError(400, "axis must be 0 (axial), 1 (coronal) or 2 (sagittal)")
        size = o.array.shape[axis]
        index = size // 2 if index is None else index
        if not 0 <= index < size:
            raise HttpError(400, f"index must be in 0..{size - 1} for axis {axis}, got {index}")
        return index
