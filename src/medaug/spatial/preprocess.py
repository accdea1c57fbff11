"""Deterministic preprocessing on the grid: foreground and label crops, reorientation, resizing.

The crops look at the data when the pipeline resolves: :class:`CropForeground`
and :class:`CropToLabel` are "random" transforms only in the engine's sense (they
are resolved from the sample); they never draw from the generator and always
return the same deterministic crop for the same data, which the history records.

* :class:`CropForeground` thresholds an intensity image with Otsu's method
  (anatomy vs air), keeps the box of the foreground plus a margin in mm, and
  measures the median intensity of the background; later spatial transforms of
  the pipeline use that value as their ``"background"`` fill.  It resolves to
  a :class:`~medaug.spatial.crop.Crop` holding the box and the background;
  :func:`crop_foreground` does the same to one image, outside a pipeline.
* :class:`CropToLabel` keeps the bounding box of a label map (or of some of its
  values) plus a margin in mm.
* :class:`Reorient` permutes and flips the axes into a named orientation
  (``RAS``, ``LPS``, ...), keeping every voxel where it is in physical space.
* :class:`Resize` resizes the array by a factor with corner-aligned sampling (as
  ``scipy.ndimage.zoom``): the first and last voxel centres stay in place.
  (To scale the *content* at random, keeping the grid, use
  :class:`~medaug.spatial.affine.RandomScale`.)

Orientation codes follow the DICOM convention of SimpleITK's ``DICOMOrient``:
each letter is the direction the matching index axis (x, y, z) points *to*;
``LPS`` is the identity direction of ITK's patient coordinates.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..data.grid import Grid, apply_homogeneous
from ..data.image import Image
from ..engine.ranges import Numbers, count, numbers
from ..engine.transform import Context, RandomTransform, SpatialTransform
from ..engine.warp import AffineWarp
from ..errors import InvalidImageError, ParameterError
from .crop import Crop

__all__ = [
    "CropForeground",
    "CropToLabel",
    "Reorient",
    "Resize",
    "crop_foreground",
    "foreground_mask",
    "orientation_of",
]

#: Margins in mm: at most 10 m.
MARGIN_MM = (0.0, 1e4)


# ---------------------------------------------------------------- helpers
def foreground_mask(array: np.ndarray, *, min_fraction: float = 0.01) -> tuple[np.ndarray, float]:
    """Voxels above Otsu's threshold (anatomy vs air), without isolated specks, and the threshold.

    The threshold is :func:`skimage.filters.threshold_otsu` (256-bin
    histogram).  Connected components smaller than ``min_fraction`` of the
    largest one (noise spikes in the air) are dropped, so they do not stretch
    the bounding box.

    Raises
    ------
    InvalidImageError
        When the image is constant (nothing to separate).
    """
    from scipy import ndimage
    from skimage.filters import threshold_otsu

    arr = np.asarray(array)
    if arr.dtype.kind not in "fiub":
        raise InvalidImageError(f"cannot threshold an image of dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False) if arr.dtype.kind != "f" else arr
    lo, hi = float(arr.min()), float(arr.max())
    if not hi > lo:
        raise InvalidImageError(f"the image is constant ({lo:g}): no foreground to separate from the background")
    t = float(threshold_otsu(arr))
    mask = arr > t
    if min_fraction > 0:
        labels, n = ndimage.label(mask)
        if n > 1:
            sizes = np.bincount(labels.ravel())
            sizes[0] = 0
            keep = sizes >= min_fraction * sizes.max()
            mask = keep[labels]
    return mask, t


def _margin_voxels(margin: Any, grid: Grid) -> np.ndarray:
    """A margin in mm (one number, or x/y/z values) as whole voxels per array axis."""
    m = np.asarray(numbers(margin, "margin", MARGIN_MM, sizes=(1, grid.ndim), unit="mm"))
    if m.size == 1:
        m = np.full(grid.ndim, m[0])
    vox = np.ceil(m / np.asarray(grid.spacing) - 1e-9).astype(int)
    return vox[::-1]  # array order


def _box_on_grid(mask: np.ndarray, grid_in: Grid, grid_out: Grid, margin: Any) -> tuple[list[int], list[int]]:
    """The (start, size) box, array order, of ``grid_out`` voxels overlapping the non-zero voxels of ``mask``.

    ``mask`` lives on ``grid_in``; the box is computed in physical space so that
    ``grid_out`` may differ (e.g. after a resampling earlier in the pipeline).
    The margin (mm) is added and the box is clipped to ``grid_out``.
    """
    idx = np.nonzero(mask)
    lo = np.array([i.min() for i in idx], float)
    hi = np.array([i.max() for i in idx], float)
    n = grid_in.ndim
    # the voxels' outer edges, array order, as the corners of a box
    edges = np.stack([lo - 0.5, hi + 0.5])
    corners = np.array([[edges[b, a] for a, b in enumerate(bits)] for bits in itertools.product((0, 1), repeat=n)])
    m_in = grid_in.array_index_to_physical_matrix()
    phys = apply_homogeneous(corners, m_in)
    m_out_inv = grid_out.physical_to_array_index_matrix()
    q = apply_homogeneous(phys, m_out_inv)
    qlo, qhi = q.min(0), q.max(0)
    # output voxels whose extent [i - 0.5, i + 0.5] overlaps the box
    start = np.floor(qlo + 0.5 + 1e-6).astype(int)
    stop = np.ceil(qhi - 0.5 - 1e-6).astype(int)
    mv = _margin_voxels(margin, grid_out)
    shape = np.asarray(grid_out.shape)
    start = np.clip(start - mv, 0, shape - 1)
    stop = np.clip(stop + mv, 0, shape - 1)
    stop = np.maximum(stop, start)
    return start.tolist(), (stop - start + 1).tolist()


def _check_margin(margin: Any) -> None:
    numbers(margin, "margin", MARGIN_MM, unit="mm")


def crop_foreground(image: Image, margin: Any = 0.0) -> tuple[Image, float]:
    """Crop an image to its foreground (Otsu threshold) and measure the background.

    Parameters
    ----------
    image : Image
        An intensity image (CT, MR, X-ray ...), anatomy brighter than air.
    margin : float or list of float
        Extra room around the foreground box, in mm (x, y, z order).

    Returns
    -------
    (Image, float)
        The cropped image (same dtype, geometry updated so that every voxel
        stays where it was) and the median intensity of the voxels at or below
        the threshold (air: about -1000 in CT), usable as a fill value.

    Examples
    --------
    >>> from medaug import shepp_logan_2d
    >>> img = shepp_logan_2d(64).image
    >>> cropped, air = crop_foreground(img)
    >>> cropped.shape[0] < 64, round(air)
    (True, -1000)
    """
    if not isinstance(image, Image):
        raise ParameterError(f"crop_foreground needs a medaug Image, got {type(image).__name__}")
    _check_margin(margin)
    arr = image.array
    mask, _ = foreground_mask(arr)
    start, size = _box_on_grid(mask, image.grid, image.grid, margin)
    background = float(np.median(arr[~mask]))
    sl = tuple(slice(s, s + k) for s, k in zip(start, size))
    grid = Crop(start=start, size=size).output_grid(image.grid)
    data = image.data[sl]
    data = data.clone() if hasattr(data, "clone") else np.ascontiguousarray(data)
    return image.with_data(data, grid), background


# ---------------------------------------------------------------- crops
@dataclass
class CropForeground(RandomTransform):
    """Crop to the foreground found by Otsu's threshold and record the background median.

    Deterministic: the crop is computed from the data when the pipeline
    resolves (the generator is not used).  Put it first in a pipeline, or
    after transforms that do not move content (``Resample``, ``Reorient``).

    Parameters
    ----------
    margin : float or list of float
        Room kept around the foreground, in mm (x, y, z order).
    image : str, optional
        The intensity image to threshold; the sample's first intensity image by default.
    p : float
        Probability of applying (1 for preprocessing).

    Examples
    --------
    >>> from medaug import Compose, shepp_logan_2d
    >>> out = Compose([CropForeground(margin=2)])(shepp_logan_2d(64))
    >>> out.history[1]["name"], round(out.metadata["background"]["image"])
    ('Crop', -1000)
    """

    margin: Numbers = 0.0
    image: str | None = None
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        _check_margin(self.margin)

    def sample(self, rng: np.random.Generator, ctx: Context) -> Crop:
        sample = ctx.sample
        intensity = sample.intensity_images
        if self.image is not None:
            if self.image not in sample or sample[self.image].is_label:
                raise ParameterError(
                    f"CropForeground: 'image' must name an intensity image of the sample, got {self.image!r} "
                    f"(intensity images: {list(intensity)})"
                )
            ref = sample[self.image]
        elif intensity:
            ref = next(iter(intensity.values()))
        else:
            raise ParameterError("CropForeground needs an intensity image to threshold; the sample has only label maps")
        mask, _ = foreground_mask(ref.array)
        start, size = _box_on_grid(mask, ref.grid, ctx.grid, self.margin)
        background = {name: float(np.median(img.array[~mask])) for name, img in intensity.items()}
        return Crop(start=start, size=size, background=background)


@dataclass
class CropToLabel(RandomTransform):
    """Crop to the bounding box of a label map (or of some of its values), plus a margin in mm.

    Deterministic: the box is computed from the label map when the pipeline resolves.

    Parameters
    ----------
    label : str, optional
        Name of the label map; the sample's first label map by default.
    values : int or list of int, optional
        Label values to keep in the box; every non-zero value by default.
    margin : float or list of float
        Room kept around the box, in mm (x, y, z order).
    p : float
        Probability of applying.
    """

    label: str | None = None
    values: int | list[int] | None = None
    margin: Numbers = 0.0
    p: float = 1.0

    def __post_init__(self) -> None:
        self.p = self.check_p(self.p)
        _check_margin(self.margin)
        if self.values is not None:
            items = self.values if isinstance(self.values, (list, tuple)) else [self.values]
            if not items or len(items) > 1000:
                raise ParameterError(f"CropToLabel 'values' must list 1 to 1000 label values, got {self.values!r}")
            self.values = [count(v, "values", (0, 2**31 - 1)) for v in items]

    def sample(self, rng: np.random.Generator, ctx: Context) -> Crop:
        sample = ctx.sample
        labels = sample.label_maps
        if self.label is not None:
            if self.label not in labels:
                raise ParameterError(
                    f"CropToLabel: no label map named {self.label!r} in the sample (label maps: {list(labels)})"
                )
            name = self.label
        elif labels:
            name = next(iter(labels))
        else:
            raise ParameterError("CropToLabel needs a label map; the sample has none")
        lab = labels[name].array
        mask = lab != 0 if self.values is None else np.isin(lab, np.atleast_1d(np.asarray(self.values)))
        if not mask.any():
            what = "any non-zero value" if self.values is None else f"the values {self.values}"
            raise ParameterError(f"CropToLabel: label map '{name}' has no voxel with {what}; nothing to crop to")
        start, size = _box_on_grid(mask, labels[name].grid, ctx.grid, self.margin)
        return Crop(start=start, size=size)


# ---------------------------------------------------------------- reorientation
_LETTERS = {"L": (0, 1), "R": (0, -1), "P": (1, 1), "A": (1, -1), "S": (2, 1), "I": (2, -1)}


def _parse_orientation(code: Any, ndim: int) -> list[tuple[int, int]]:
    if not isinstance(code, str):
        raise ParameterError(f"'orientation' must be a code such as 'RAS' or 'LPS', got {code!r}")
    c = code.strip().upper()
    if len(c) not in (2, 3) or any(ch not in _LETTERS for ch in c):
        raise ParameterError(f"'orientation' must be 2 or 3 letters from L/R, A/P, S/I (e.g. RAS, LPS), got {code!r}")
    axes = [_LETTERS[ch] for ch in c]
    if len({a for a, _ in axes}) != len(axes):
        raise ParameterError(
            f"'orientation' {code!r} names a physical axis twice; use one of L/R, one of A/P, one of S/I"
        )
    if ndim == 3 and len(axes) != 3:
        raise ParameterError(f"a 3D image needs a 3-letter orientation (e.g. RAS), got {code!r}")
    if ndim == 2:
        axes = [a for a in axes if a[0] != 2]
        if len(axes) != 2:
            raise ParameterError(f"a 2D image needs its orientation in L/R and A/P (e.g. RA or LP), got {code!r}")
    return axes


def _axis_assignment(direction: np.ndarray) -> list[int]:
    """Physical axis of each index axis: the permutation with the largest total alignment."""
    n = direction.shape[0]
    best = max(itertools.permutations(range(n)), key=lambda perm: sum(abs(direction[perm[j], j]) for j in range(n)))
    return list(best)


def orientation_of(grid: Grid) -> str:
    """The orientation code of a grid (closest axis-aligned one for oblique grids), e.g. ``'LPS'``."""
    names = {(0, 1): "L", (0, -1): "R", (1, 1): "P", (1, -1): "A", (2, 1): "S", (2, -1): "I"}
    d = grid.direction
    phys = _axis_assignment(d)
    return "".join(names[(a, 1 if d[a, j] > 0 else -1)] for j, a in enumerate(phys))


@dataclass
class Reorient(SpatialTransform):
    """Permute and flip the axes into a named orientation; every voxel keeps its physical place.

    The output grid covers exactly the input voxels, so the values are an exact
    permutation (no interpolation), as SimpleITK's ``DICOMOrient``.

    Parameters
    ----------
    orientation : str
        Where each index axis (x, y, z) points to: ``RAS`` (x to the patient's
        right, y anterior, z superior; the NIfTI/nibabel canonical layout),
        ``LPS`` (ITK/DICOM identity), ... In 2D, two letters (``RA``) or a
        3-letter code whose S/I letter is ignored.

    Examples
    --------
    >>> from medaug import shepp_logan_2d
    >>> s = shepp_logan_2d(32)
    >>> out = Reorient("RA")(s)
    >>> bool((out.image.array == s.image.array[::-1, ::-1]).all())
    True
    """

    orientation: str = "RAS"

    def __post_init__(self) -> None:
        _parse_orientation(self.orientation, 3 if len(str(self.orientation).strip()) == 3 else 2)
        self.orientation = self.orientation.strip().upper()

    def _plan(self, grid: Grid) -> tuple[list[int], list[bool]]:
        """Source index axis and flip for each output index axis."""
        targets = _parse_orientation(self.orientation, grid.ndim)
        d = grid.direction
        phys = _axis_assignment(d)
        source, flips = [], []
        for a, sign in targets:
            j = phys.index(a)
            source.append(j)
            flips.append(bool(np.sign(d[a, j]) != sign))
        return source, flips

    def output_grid(self, grid: Grid) -> Grid:
        source, flips = self._plan(grid)
        size = grid.size_xyz
        d = grid.direction
        direction = np.stack([d[:, j] * (-1.0 if f else 1.0) for j, f in zip(source, flips)], axis=1)
        spacing = [grid.spacing[j] for j in source]
        size_new = [size[j] for j in source]
        first = np.zeros(grid.ndim)
        for j, f in zip(source, flips):
            first[j] = size[j] - 1 if f else 0
        origin = grid.index_to_physical(first[None])[0]
        return Grid(tuple(reversed(size_new)), spacing, origin, direction)

    def warp(self, grid_in: Grid, grid_out: Grid) -> AffineWarp:
        return AffineWarp.identity(grid_in.ndim)

    def short(self) -> str:
        return f"→{self.orientation}"


# ---------------------------------------------------------------- resize
@dataclass
class Resize(SpatialTransform):
    """Resize the array by a zoom factor, corner-aligned as ``scipy.ndimage.zoom``.

    The output has ``round(shape * factor)`` voxels; its first and last voxel
    centres sit on the input's, so the anatomy keeps its physical size and the
    spacing becomes ``spacing * (n_in - 1) / (n_out - 1)``.  Intensity images are
    interpolated with the pipeline's interpolation (linear: scipy's ``order=1``),
    label maps with nearest neighbour (``order=0``).  To resample to a spacing
    (edge-aligned), use :class:`~medaug.spatial.resample.Resample`.

    Parameters
    ----------
    factor : float or list of float
        One factor, or one per axis in array order (z, y, x) as scipy, in [0.01, 100].
    """

    renamed_from = ("Zoom",)

    factor: Numbers = 1.0

    def __post_init__(self) -> None:
        numbers(self.factor, "factor", (0.01, 100.0))

    def _factors(self, ndim: int) -> np.ndarray:
        f = np.atleast_1d(np.asarray(self.factor, float))
        if f.size == 1:
            f = np.full(ndim, f[0])
        if f.size != ndim:
            raise ParameterError(
                f"Resize 'factor' needs 1 or {ndim} values (array order) for a {ndim}D image, got {self.factor}"
            )
        return f

    def output_grid(self, grid: Grid) -> Grid:
        f = self._factors(grid.ndim)
        n_in = np.asarray(grid.shape)
        n_out = np.array([int(round(float(s) * float(k))) for s, k in zip(n_in, f)])  # scipy's rounding
        if (n_out < 1).any():
            raise ParameterError(f"Resize by {self.factor} leaves no voxel on an axis of {tuple(n_in)}")
        bad = (n_in == 1) & (n_out > 1)
        if bad.any():
            raise ParameterError(
                f"Resize cannot enlarge an axis of a single voxel (shape {tuple(n_in)}): corner-aligned resizing "
                "needs two voxel centres; use Resample instead"
            )
        ratio = np.where(n_out > 1, (n_in - 1) / np.maximum(n_out - 1, 1), n_in)  # array order
        spacing = np.asarray(grid.spacing) * ratio[::-1]
        return grid.with_(shape=tuple(int(s) for s in n_out), spacing=tuple(spacing))

    def warp(self, grid_in: Grid, grid_out: Grid) -> AffineWarp:
        return AffineWarp.identity(grid_in.ndim)

    def short(self) -> str:
        return f"resize {self.factor}"
