"""Deterministic synthetic inputs for the benchmarks.

Nothing here depends on medaug: the peers and medaug get exactly the same
arrays.  The 3D volume is "brain-sized" (MNI-like 1 mm grid) and head-like:
a scalp/skull shell, grey matter, white matter, two ventricles and a small
lesion, smoothed and with a little noise.  Intensities are normalised to
about [0, 1] (as after a typical per-volume normalisation), so "2 % of the
intensity range" is a noise standard deviation of 0.02.

Array layout is numpy (z, y, x) with 1 mm isotropic spacing.  The x axis
(last axis) is left-right.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SHAPE_3D = (189, 233, 197)  # z, y, x
SHAPE_2D = (256, 256)  # y, x
SPACING_3D = (1.0, 1.0, 1.0)
INTENSITY_RANGE = 1.0  # images lie in about [0, 1]
NOISE_STD = 0.02 * INTENSITY_RANGE

# label values: 0 background, 1 grey matter (incl. skull shell is background),
# 2 white matter, 3 ventricles, 4 lesion
LABELS = (0, 1, 2, 3, 4)


def _ellipsoid(coords, centre, radii):
    acc = None
    for c, m, r in zip(coords, centre, radii):
        term = ((c - m) / r) ** 2
        acc = term if acc is None else acc + term
    return acc <= 1.0


def make_volume(shape=SHAPE_3D, seed: int = 0):
    """Return ``(image float32 (z,y,x), label uint8 (z,y,x))``."""
    rng = np.random.default_rng(seed)
    nz, ny, nx = shape
    z = np.arange(nz, dtype=np.float32)[:, None, None]
    y = np.arange(ny, dtype=np.float32)[None, :, None]
    x = np.arange(nx, dtype=np.float32)[None, None, :]
    coords = (z, y, x)
    cz, cy, cx = (nz - 1) / 2, (ny - 1) / 2, (nx - 1) / 2
    # radii as fractions of the half-extent
    head = _ellipsoid(coords, (cz, cy, cx), (0.46 * nz, 0.46 * ny, 0.44 * nx))
    brain = _ellipsoid(coords, (cz + 3, cy, cx), (0.38 * nz, 0.40 * ny, 0.37 * nx))
    wm = _ellipsoid(coords, (cz + 5, cy, cx), (0.27 * nz, 0.30 * ny, 0.27 * nx))
    vent_l = _ellipsoid(coords, (cz + 8, cy - 5, cx - 12), (0.06 * nz, 0.12 * ny, 0.035 * nx))
    vent_r = _ellipsoid(coords, (cz + 8, cy - 5, cx + 12), (0.06 * nz, 0.12 * ny, 0.035 * nx))
    lesion = _ellipsoid(coords, (cz + 25, cy + 30, cx + 30), (9.0, 11.0, 8.0))

    label = np.zeros(shape, dtype=np.uint8)
    label[brain] = 1
    label[wm] = 2
    label[vent_l | vent_r] = 3
    label[lesion & brain] = 4

    image = np.zeros(shape, dtype=np.float32)
    image[head] = 0.35  # scalp / skull shell
    image[brain] = 0.55  # grey matter
    image[wm] = 0.80
    image[vent_l | vent_r] = 0.15
    image[lesion & brain] = 0.95
    # partial-volume blur, a smooth low-frequency shading and a little noise
    image = ndimage.gaussian_filter(image, 1.0).astype(np.float32)
    shading = 1.0 + 0.05 * np.sin(z / nz * np.pi) * np.cos(x / nx * np.pi)
    image *= shading.astype(np.float32)
    image += rng.normal(0.0, 0.01, size=shape).astype(np.float32)
    np.clip(image, 0.0, 1.0, out=image)
    return np.ascontiguousarray(image, dtype=np.float32), label


def make_image_2d(shape=SHAPE_2D, seed: int = 0):
    """Return ``(image float32 (y,x) in [0,1], label uint8 (y,x))``: one slice-like disc phantom."""
    rng = np.random.default_rng(seed)
    ny, nx = shape
    y = np.arange(ny, dtype=np.float32)[:, None]
    x = np.arange(nx, dtype=np.float32)[None, :]
    cy, cx = (ny - 1) / 2, (nx - 1) / 2
    coords = (y, x)
    head = _ellipsoid(coords, (cy, cx), (0.46 * ny, 0.42 * nx))
    brain = _ellipsoid(coords, (cy, cx), (0.40 * ny, 0.36 * nx))
    wm = _ellipsoid(coords, (cy, cx), (0.30 * ny, 0.26 * nx))
    vent = _ellipsoid(coords, (cy - 5, cx - 14), (0.12 * ny, 0.04 * nx)) | _ellipsoid(
        coords, (cy - 5, cx + 14), (0.12 * ny, 0.04 * nx)
    )
    lesion = _ellipsoid(coords, (cy + 40, cx + 35), (12.0, 10.0))
    label = np.zeros(shape, dtype=np.uint8)
    label[brain] = 1
    label[wm] = 2
    label[vent] = 3
    label[lesion & brain] = 4
    image = np.zeros(shape, dtype=np.float32)
    image[head] = 0.35
    image[brain] = 0.55
    image[wm] = 0.80
    image[vent] = 0.15
    image[lesion & brain] = 0.95
    image = ndimage.gaussian_filter(image, 1.0).astype(np.float32)
    image += rng.normal(0.0, 0.01, size=shape).astype(np.float32)
    np.clip(image, 0.0, 1.0, out=image)
    return np.ascontiguousarray(image, dtype=np.float32), label


def make_inputs(kind: str = "3d", seed: int = 0):
    if kind == "3d":
        return make_volume(seed=seed)
    if kind == "2d":
        return make_image_2d(seed=seed)
    if kind == "3d4":  # four channels (as BraTS' FLAIR, T1w, T1gd, T2w) of the 3D volume, one label map
        image, label = make_volume(seed=seed)
        smooth = ndimage.uniform_filter(image, 3)
        channels = np.stack([image, 1.0 - image, image * image, smooth]).astype(np.float32)
        return np.ascontiguousarray(channels), label
    raise ValueError(f"unknown kind {kind!r}")
