"""Synthetic head phantoms (Shepp–Logan style) with labels and landmarks.

The phantom is a head-like CT in Hounsfield units: air (-1000) outside, a
skull (+800..1000), brain (30..40) with a few slightly denser structures,
two ventricles (5..15) and one small hyperdense lesion (55..75) placed by the
seed inside the brain.  Shapes, positions and intensities vary slightly with
the seed; the same seed always gives the same phantom.

Labels (uint8): 0 background, 1 skull, 2 brain, 3 ventricles, 4 lesion.
Landmarks (``points["landmarks"]``, physical mm, x/y/z order) are the voxel
centres nearest to the centres of the right ventricle, the left ventricle and
the lesion, in that order (``metadata["landmark_names"]``); each lies on a voxel
of the matching label.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ParameterError
from .grid import Grid
from .image import Image
from .sample import Sample

__all__ = ["shepp_logan_2d", "shepp_logan_3d", "LABELS"]

#: Label value -> structure name.
LABELS: dict[int, str] = {0: "background", 1: "skull", 2: "brain", 3: "ventricles", 4: "lesion"}
LANDMARK_NAMES = ("right_ventricle", "left_ventricle", "lesion")
_MIN_SIZE = 16

# Ellipsoids in normalised coordinates [-1, 1]: centre (x, y, z), semi-axes (x, y, z),
# in-plane rotation in degrees; after Kak & Slaney's 3D Shepp–Logan phantom.
_HEAD = ((0.0, 0.0, 0.0), (0.69, 0.92, 0.81), 0.0)
_BRAIN = ((0.0, -0.0184, 0.0), (0.6624, 0.874, 0.78), 0.0)
_VENTRICLES = (
    ((0.22, 0.0, 0.0), (0.11, 0.31, 0.22), -18.0),  # right
    ((-0.22, 0.0, 0.0), (0.16, 0.41, 0.28), 18.0),  # left
)
_STRUCTURES = (  # slightly denser brain structures (label stays "brain")
    ((0.0, 0.35, -0.15), (0.21, 0.25, 0.41), 0.0),
    ((0.0, 0.1, 0.25), (0.046, 0.046, 0.05), 0.0),
    ((0.0, -0.605, 0.0), (0.046, 0.023, 0.05), 0.0),
    ((0.06, -0.605, 0.0), (0.023, 0.046, 0.02), 0.0),
)


def shepp_logan_2d(
    size: int | Sequence[int] = 128,
    *,
    seed: int = 0,
    spacing: Sequence[float] | None = None,
    direction: Sequence[float] | np.ndarray | None = None,
) -> Sample:
    """A 2D head phantom: an axial slice through the centre of :func:`shepp_logan_3d`.

    Parameters
    ----------
    size : int or (ny, nx)
        Array shape; an int gives a square image.  At least 16 per axis.
    seed : int
        Seed of the small random variations and of the lesion's position.
    spacing : (sx, sy), optional
        Pixel size in mm (x, y order); 1 mm if omitted.
    direction : array_like, optional
        2x2 direction cosines (row-major); identity if omitted.

    Returns
    -------
    Sample
        ``image`` (float32, HU), ``label`` (uint8, 0..4), ``points["landmarks"]``
        (3, 2) and ``metadata`` (``modality``, ``case_id``, ``landmark_names``).
        The grid is centred on the physical origin.

    Examples
    --------
    >>> s = shepp_logan_2d(64, seed=1)
    >>> s.image.shape, sorted(s.label.label_values().tolist())
    ((64, 64), [0, 1, 2, 3, 4])
    """
    return _phantom(2, size, seed, spacing, direction)


def shepp_logan_3d(
    size: int | Sequence[int] = 64,
    *,
    seed: int = 0,
    spacing: Sequence[float] | None = None,
    direction: Sequence[float] | np.ndarray | None = None,
) -> Sample:
    """A 3D head phantom of Shepp–Logan ellipsoids.

    Parameters
    ----------
    size : int or (nz, ny, nx)
        Array shape; an int gives a cube.  At least 16 per axis.
    seed : int
        Seed of the small random variations and of the lesion's position.
    spacing : (sx, sy, sz), optional
        Voxel size in mm (x, y, z order), may be anisotropic; 1 mm if omitted.
    direction : array_like, optional
        3x3 direction cosines (row-major); identity if omitted.

    Returns
    -------
    Sample
        ``image`` (float32, HU), ``label`` (uint8, 0..4), ``points["landmarks"]``
        (3, 3) and ``metadata`` (``modality``, ``case_id``, ``landmark_names``).
        The grid is centred on the physical origin.
    """
    return _phantom(3, size, seed, spacing, direction)


def _phantom(
    ndim: int,
    size: int | Sequence[int],
    seed: int,
    spacing: Sequence[float] | None,
    direction: Sequence[float] | np.ndarray | None,
) -> Sample:
    shape = (int(size),) * ndim if np.isscalar(size) else tuple(int(s) for s in size)  # type: ignore[arg-type, union-attr]
    if len(shape) != ndim or min(shape) < _MIN_SIZE:
        raise ParameterError(f"size must be an int or {ndim} ints (array order), each >= {_MIN_SIZE}; got {size}")
    grid = Grid(shape, spacing, None, direction)
    # centre the grid on the physical origin
    origin = -grid.direction @ (np.asarray(grid.spacing) * (np.asarray(grid.size_xyz) - 1) / 2)
    grid = grid.with_(origin=tuple(origin))

    rng = np.random.default_rng(seed)
    coords = _normalised_coords(shape)  # (x, y, z) arrays, broadcastable

    def jitter(ell: tuple, pos: float = 0.015, scale: float = 0.04, angle: float = 4.0) -> tuple:
        centre, axes, rot = ell
        return (
            tuple(np.asarray(centre) + rng.uniform(-pos, pos, 3)),
            tuple(np.asarray(axes) * (1 + rng.uniform(-scale, scale, 3))),
            rot + rng.uniform(-angle, angle),
        )

    head = jitter(_HEAD, pos=0.005, scale=0.02, angle=0.0)
    brain = (head[0], tuple(np.asarray(head[1]) * 0.92), 0.0)  # skull ~4-8% of the head radius
    ventricles = [jitter(v) for v in _VENTRICLES]
    structures = [jitter(s, pos=0.01) for s in _STRUCTURES]
    hu = {
        "air": -1000.0,
        "skull": rng.uniform(800.0, 1000.0),
        "brain": rng.uniform(30.0, 40.0),
        "structure": rng.uniform(4.0, 10.0),  # added to the brain value
        "ventricle": rng.uniform(5.0, 15.0),
        "lesion": rng.uniform(55.0, 75.0),
    }

    image = np.full(shape, hu["air"], np.float32)
    label = np.zeros(shape, np.uint8)
    masks = {}
    masks["head"] = _inside(coords, head)
    image[masks["head"]], label[masks["head"]] = hu["skull"], 1
    masks["brain"] = _inside(coords, brain)
    image[masks["brain"]], label[masks["brain"]] = hu["brain"], 2
    for s in structures:
        m = _inside(coords, s) & masks["brain"]
        image[m] = hu["brain"] + hu["structure"]
    vent_masks = [_inside(coords, v) & masks["brain"] for v in ventricles]
    for m in vent_masks:
        image[m], label[m] = hu["ventricle"], 3
    lesion = _place_lesion(rng, coords, brain, ventricles, shape)
    lesion_mask = _inside(coords, lesion) & (label == 2)
    image[lesion_mask], label[lesion_mask] = hu["lesion"], 4

    centres = [v[0] for v in ventricles] + [lesion[0]]
    landmark_masks = [*vent_masks, lesion_mask]
    index_xyz = np.array([_nearest_voxel(m, c, shape) for m, c in zip(landmark_masks, centres, strict=True)])
    landmarks = grid.index_to_physical(index_xyz.astype(float))

    return Sample(
        image=Image(image, grid=grid),
        label=Image(label, grid=grid, is_label=True),
        points={"landmarks": landmarks},
        metadata={"modality": "ct", "case_id": f"phantom-{seed}", "landmark_names": list(LANDMARK_NAMES)},
    )


def _normalised_coords(shape: tuple[int, ...]) -> list[np.ndarray]:
    """Normalised (x, y, z) coordinates in [-1, 1] (z = 0 in 2D), broadcastable to ``shape``.

    ``y`` grows towards lower row indices so the phantom displays as the classic picture.
    """
    ndim = len(shape)
    axes = []
    for a, n in enumerate(shape):
        v = np.linspace(-1.0, 1.0, n)
        view = [1] * ndim
        view[a] = n
        axes.append(v.reshape(view))
    if ndim == 2:
        y, x = axes
        return [x, -y, np.zeros((1, 1))]
    z, y, x = axes
    return [x, -y, z]


def _inside(coords: list[np.ndarray], ell: tuple) -> np.ndarray:
    (cx, cy, cz), (ax, ay, az), rot = ell
    x, y, z = coords
    t = np.deg2rad(rot)
    dx, dy, dz = x - cx, y - cy, z - cz
    xr = np.cos(t) * dx + np.sin(t) * dy
    yr = -np.sin(t) * dx + np.cos(t) * dy
    return (xr / ax) ** 2 + (yr / ay) ** 2 + (dz / az) ** 2 <= 1.0


def _place_lesion(
    rng: np.random.Generator, coords: list[np.ndarray], brain: tuple, ventricles: list[tuple], shape: tuple[int, ...]
) -> tuple:
    """A small ellipsoid inside the brain, clear of the ventricles, at least ~2 voxels across."""
    voxel = 2.0 / (min(shape) - 1)
    radius = max(rng.uniform(0.06, 0.1), 2.0 * voxel)
    (bx, by, bz), (ax, ay, az), _ = brain
    for _ in range(1000):
        u = rng.uniform(-1, 1, 3)
        if len(shape) == 2:
            u[2] = 0.0
        if np.sum(u**2) > 1:
            continue
        centre = (bx + 0.6 * ax * u[0], by + 0.6 * ay * u[1], bz + 0.6 * az * u[2])
        grown = [(c, tuple(a + radius + 2 * voxel for a in axes), r) for c, axes, r in ventricles]
        point = [np.array(v, ndmin=3) for v in centre]
        if not any(_inside(point, g).item() for g in grown):
            break
    axes = tuple(radius * (1 + rng.uniform(-0.2, 0.2, 3)))
    return centre, axes, rng.uniform(0.0, 180.0)


def _nearest_voxel(mask: np.ndarray, centre: tuple, shape: tuple[int, ...]) -> np.ndarray:
    """ITK (x, y, z) index of the voxel of ``mask`` nearest to a normalised centre."""
    idx = np.argwhere(mask)  # array order
    if idx.size == 0:  # pragma: no cover - the size check keeps every structure visible
        raise ParameterError(f"phantom of size {shape} is too small to show every structure")
    n = np.asarray(shape, float)
    ndim = len(shape)
    # normalised centre -> continuous array index (x, -y, z) convention of _normalised_coords
    cx, cy, cz = centre
    target = [(cz + 1) / 2 * (n[0] - 1)] if ndim == 3 else []
    target += [(-cy + 1) / 2 * (n[-2] - 1), (cx + 1) / 2 * (n[-1] - 1)]
    best = idx[np.argmin(np.sum((idx - np.asarray(target)) ** 2, axis=1))]
    return best[::-1]
