"""Synthetic Shepp–Logan head phantoms."""

from __future__ import annotations

import numpy as np
import pytest

from medaug.data import Sample, shepp_logan_2d, shepp_logan_3d
from medaug.errors import ParameterError


@pytest.mark.parametrize("make,ndim", [(shepp_logan_2d, 2), (shepp_logan_3d, 3)])
def test_structure_labels_and_intensities(make, ndim: int) -> None:
    s = make(seed=4)
    assert isinstance(s, Sample)
    image, label = s["image"], s["label"]
    assert image.ndim == ndim and image.dtype == np.float32 and not image.is_label
    assert label.is_label and label.dtype == np.uint8
    assert set(np.unique(label.array).tolist()) == {0, 1, 2, 3, 4}
    img, lab = image.array, label.array
    assert (img[lab == 0] == -1000).all()
    assert 800 <= img[lab == 1].min() <= img[lab == 1].max() <= 1000
    assert 30 <= img[lab == 2].min() and img[lab == 2].max() <= 50
    assert 5 <= img[lab == 3].min() <= img[lab == 3].max() <= 15
    assert 55 <= img[lab == 4].min() <= img[lab == 4].max() <= 75
    assert 0 < (lab == 4).sum() < 0.02 * lab.size  # a small lesion
    assert s.metadata["modality"] == "ct" and s.metadata["case_id"] == "phantom-4"


@pytest.mark.parametrize("make", [shepp_logan_2d, shepp_logan_3d])
def test_deterministic_by_seed(make) -> None:
    a, b, c = make(32, seed=7), make(32, seed=7), make(32, seed=8)
    np.testing.assert_array_equal(a.image.array, b.image.array)
    np.testing.assert_array_equal(a.label.array, b.label.array)
    np.testing.assert_array_equal(a.points["landmarks"], b.points["landmarks"])
    assert not np.array_equal(a.image.array, c.image.array)
    assert not np.array_equal(a.label.array, c.label.array)


def test_lesion_moves_with_seed() -> None:
    centres = {tuple(shepp_logan_2d(64, seed=s).points["landmarks"][2]) for s in range(6)}
    assert len(centres) > 3


@pytest.mark.parametrize(
    "make,size,spacing,direction",
    [
        (shepp_logan_2d, 96, None, None),
        (shepp_logan_2d, (40, 56), (0.5, 1.25), [[0.0, -1.0], [1.0, 0.0]]),
        (shepp_logan_3d, 48, None, None),
        (shepp_logan_3d, (20, 48, 40), (0.8, 0.9, 3.0), np.diag([1.0, -1.0, -1.0])),
    ],
)
def test_landmarks_sit_on_voxels_of_the_expected_label(make, size, spacing, direction) -> None:
    s = make(size, seed=2, spacing=spacing, direction=direction)
    pts = s.points["landmarks"]
    assert pts.shape == (3, s.ndim)
    assert s.metadata["landmark_names"] == ["right_ventricle", "left_ventricle", "lesion"]
    index_xyz = s.grid.physical_to_index(pts)
    np.testing.assert_allclose(index_xyz, np.round(index_xyz), atol=1e-6)  # voxel centres
    array_index = tuple(np.round(index_xyz[:, ::-1]).astype(int).T)
    assert s.label.array[array_index].tolist() == [3, 3, 4]
    if spacing is not None:
        np.testing.assert_allclose(s.image.spacing, spacing)
    np.testing.assert_allclose(s.grid.center(), np.zeros(s.ndim), atol=1e-9)  # centred on the origin


def test_two_ventricles_are_distinct() -> None:
    pts = shepp_logan_3d(48, seed=0).points["landmarks"]
    assert np.linalg.norm(pts[0] - pts[1]) > 8.0


def test_bad_size() -> None:
    with pytest.raises(ParameterError, match="size"):
        shepp_logan_2d(8)
    with pytest.raises(ParameterError, match="size"):
        shepp_logan_3d((32, 32))
