"""Shared fixtures: small deterministic volumes with labels, on oblique anisotropic grids."""

from __future__ import annotations

import numpy as np
import pytest

from medaug import Image, Sample


def blob_sample(shape=(24, 28, 20), spacing=None, direction=None, origin=None, seed=0) -> Sample:
    """An ellipsoid with an inner core (labels 1, 2) and a landmark at the core's centre."""
    rng = np.random.default_rng(seed)
    nd = len(shape)
    grids = np.meshgrid(*[np.arange(s, dtype=float) for s in shape], indexing="ij")
    centre = np.array([s / 2 for s in shape]) + rng.uniform(-1, 1, nd)
    r = sum(((g - c) / (s / 3)) ** 2 for g, c, s in zip(grids, centre, shape))
    core_c = centre + np.array([s / 10 for s in shape])
    r2 = sum(((g - c) / (s / 8)) ** 2 for g, c, s in zip(grids, core_c, shape))
    img = np.where(r < 1, 100.0, -1000.0) + np.where(r2 < 1, 300.0, 0.0)
    img = img + sum(g for g in grids)  # a gradient so that flips and rotations are visible
    lab = np.where(r < 1, 1, 0) + np.where(r2 < 1, 1, 0)
    image = Image(img.astype(np.float32), spacing=spacing, origin=origin, direction=direction)
    label = Image(lab.astype(np.uint8), spacing=spacing, origin=origin, direction=direction, is_label=True)
    landmark = image.grid.index_to_physical(core_c[::-1][None])
    return Sample(image=image, label=label, points={"landmarks": landmark}, metadata={"modality": "ct"})


def oblique_direction(ndim: int) -> np.ndarray:
    from medaug.spatial._axes import rotation_matrix

    return rotation_matrix([20.0] if ndim == 2 else [10.0, -15.0, 25.0])


@pytest.fixture
def sample3d() -> Sample:
    return blob_sample()


@pytest.fixture
def sample2d() -> Sample:
    return blob_sample((40, 36))


@pytest.fixture(params=[2, 3], ids=["2d", "3d"])
def oblique_sample(request) -> Sample:
    nd = request.param
    shape = (30, 26) if nd == 2 else (18, 24, 20)
    spacing = (0.8, 1.7) if nd == 2 else (0.9, 1.3, 2.5)
    origin = (-12.0, 40.0) if nd == 2 else (-50.0, 20.0, 7.5)
    return blob_sample(shape, spacing=spacing, direction=oblique_direction(nd), origin=origin)
