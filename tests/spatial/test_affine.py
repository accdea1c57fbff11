"""Affine transforms: identity, exact 90° rotations and flips, composition, inverse, points."""

from __future__ import annotations

import numpy as np
import pytest

from medaug import Compose, ParameterError, inverse_of
from medaug.engine.execute import execute
from medaug.engine.record import applied
from medaug.spatial import Affine, Flip, RandomAffine, RandomFlip

from ..conftest import blob_sample


def _arrays(s):
    return s["image"].array, s["label"].array


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_identity_returns_input(oblique_sample, backend):
    out = Compose([Affine()], backend=backend)(oblique_sample)
    np.testing.assert_allclose(out["image"].array, oblique_sample["image"].array, atol=1e-3)
    np.testing.assert_array_equal(out["label"].array, oblique_sample["label"].array)
    assert out["image"].grid.same_as(oblique_sample["image"].grid)
    np.testing.assert_allclose(out.points["landmarks"], oblique_sample.points["landmarks"], atol=1e-9)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_rotation_90_equals_array_rotation_2d(backend):
    s = blob_sample((32, 32))
    out = Compose([Affine(rotation=90.0)], backend=backend)(s)
    img, lab = _arrays(s)
    # +90° about the physical z axis moves +x content to +y: in (y, x) array order that is rot90 with k=1 on axes (1, 0)
    expected = np.rot90(img, k=1, axes=(1, 0))
    np.testing.assert_allclose(out["image"].array, expected, atol=1e-3)
    np.testing.assert_array_equal(out["label"].array, np.rot90(lab, k=1, axes=(1, 0)))


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_rotation_90_equals_array_rotation_3d(backend):
    s = blob_sample((20, 20, 20))
    out = Compose([Affine(rotation=[0.0, 0.0, 90.0])], backend=backend)(s)
    img, lab = _arrays(s)
    np.testing.assert_allclose(out["image"].array, np.rot90(img, k=1, axes=(2, 1)), atol=1e-3)
    np.testing.assert_array_equal(out["label"].array, np.rot90(lab, k=1, axes=(2, 1)))


@pytest.mark.parametrize("axis,array_axis", [("LR", 2), ("AP", 1), ("SI", 0)])
def test_flip_equals_array_flip(sample3d, axis, array_axis):
    out = Flip(axes=[axis])(sample3d)
    img, lab = _arrays(sample3d)
    np.testing.assert_array_equal(out["image"].array, np.flip(img, array_axis))
    np.testing.assert_array_equal(out["label"].array, np.flip(lab, array_axis))


def test_flip_on_oblique_grid_is_a_physical_reflection(oblique_sample):
    out = Flip(axes=["LR"])(oblique_sample)
    c = oblique_sample.grid.center()
    p = oblique_sample.points["landmarks"]
    expected = p.copy()
    expected[:, 0] = 2 * c[0] - p[:, 0]
    np.testing.assert_allclose(out.points["landmarks"], expected, atol=1e-6)


def test_random_flip_p_is_per_axis_probability(sample2d):
    flips = sum(
        any(h["name"] == "Flip" for h in applied(Compose([RandomFlip(axes=["LR"], p=0.5)])(sample2d, seed=i).history))
        for i in range(200)
    )
    assert 70 < flips < 130


def test_two_affines_compose_into_one_resampling(sample3d):
    a, b = Affine(rotation=[4.0, -3.0, 7.0], translation=[2.0, 0.0, -1.0]), Affine(scale=[1.1, 0.95, 1.0], rotation=[0, 5.0, 0])
    fused = execute(sample3d, [a, b])
    stepwise = execute(execute(sample3d, [a]), [b])
    inside = fused["label"].array > 0
    diff = np.abs(fused["image"].array - stepwise["image"].array)[inside]
    # one interpolation instead of two: they agree up to interpolation error, mostly far below it
    assert np.median(diff) < 20.0
    agree = (fused["label"].array == stepwise["label"].array).mean()
    assert agree > 0.97
    np.testing.assert_allclose(fused.points["landmarks"], stepwise.points["landmarks"], atol=1e-6)


def test_points_follow_the_content(oblique_sample):
    s = oblique_sample
    out = Compose([Affine(rotation=[8.0] if s.ndim == 2 else [8.0, -6.0, 5.0], scale=1.05, translation=3.0)])(s)
    # the centroid of the core label (value 2) must land on the mapped landmark, within a voxel
    lab = out["label"].array
    idx = np.argwhere(lab == 2).mean(0)[::-1]
    centroid = out["label"].grid.index_to_physical(idx[None])[0]
    before = s["label"].grid.index_to_physical(np.argwhere(s["label"].array == 2).mean(0)[::-1][None])[0]
    moved = Compose([Affine(rotation=[8.0] if s.ndim == 2 else [8.0, -6.0, 5.0], scale=1.05, translation=3.0)])
    tracked = moved(s.replace(points={"c": before[None]})).points["c"][0]
    assert np.linalg.norm(centroid - tracked) < max(s.grid.spacing)


def test_inverse_round_trips_labels_within_one_voxel(sample3d):
    pipeline = Compose([RandomAffine(rotation=10, scale=0.1, translation=3)])
    out = pipeline(sample3d, seed=3)
    back = inverse_of(out.history)(out)
    a, b = sample3d["label"].array, back["label"].array
    assert back["label"].grid.same_as(sample3d["label"].grid)
    from scipy.ndimage import binary_dilation, binary_erosion

    for value in (1, 2):
        inner = binary_erosion(a >= value, iterations=1)
        outer = binary_dilation(a >= value, iterations=1)
        assert np.all(b[inner] >= value)
        assert np.all(b[~outer] < value)


def test_same_seed_same_output(sample3d):
    p = Compose([RandomAffine(rotation=10, scale=[0.9, 1.1], translation=5), RandomFlip(axes=["LR"], p=0.5)])
    a, b = p(sample3d, seed=11), p(sample3d, seed=11)
    np.testing.assert_array_equal(a["image"].array, b["image"].array)
    assert a.history == b.history
    c = p(sample3d, seed=12)
    assert not np.array_equal(a["image"].array, c["image"].array)


def test_fill_value_outside_field_of_view(sample2d):
    out = Compose([Affine(translation=[30.0, 0.0])], fill=-1000.0)(sample2d)
    assert np.all(out["image"].array[:, :20] == -1000.0)
    assert np.all(out["label"].array[:, :20] == 0)
    bg = Compose([Affine(translation=[30.0, 0.0])])(sample2d)  # default: background (border median)
    assert np.allclose(bg["image"].array[:, :5], np.median(np.concatenate([sample2d["image"].array[[0, -1]].ravel(), sample2d["image"].array[:, [0, -1]].ravel()])))


def test_history_records_parameters(sample3d):
    out = Compose([RandomAffine(rotation=10)])(sample3d, seed=0)
    rec = out.history[1]
    assert rec["name"] == "Affine" and len(rec["params"]["rotation"]) == 3
    assert all(abs(r) <= 10 for r in rec["params"]["rotation"])


def test_per_axis_lists_work_in_3d_in_lr_ap_si_order():
    s = blob_sample((16, 18, 20))
    for seed in range(5):
        rec = Compose([RandomAffine(rotation=[0, 0, 15], translation=[0, 3, 0])])(s, seed=seed).history[1]["params"]
        rx, ry, rz = rec["rotation"]
        assert rx == 0.0 and ry == 0.0 and abs(rz) <= 15
        tx, ty, tz = rec["translation"]
        assert tx == 0.0 and tz == 0.0 and abs(ty) <= 3
    rec = Compose([RandomAffine(translation_fraction=[0.1, 0, 0])])(s, seed=1).history[1]["params"]
    assert rec["translation"][1:] == [0.0, 0.0]
    # a three-value rotation does not fit a 2D image: refused when applied, naming the parameter
    with pytest.raises(ParameterError, match="rotation"):
        RandomAffine(rotation=[0, 0, 15])(blob_sample((20, 20)), seed=0)
    with pytest.raises(ParameterError, match="rotation"):
        RandomAffine(rotation=[1, 2, 3, 4])


def test_rotations_compose_as_rz_ry_rx():
    from medaug.spatial._axes import rotation_matrix

    rx, ry, rz = (rotation_matrix([a if i == k else 0.0 for i in range(3)]) for k, a in enumerate((10.0, 20.0, 30.0)))
    np.testing.assert_allclose(rotation_matrix([10.0, 20.0, 30.0]), rz @ ry @ rx)
    # +90 about SI turns LR into AP: a point on +x goes to +y
    np.testing.assert_allclose(rotation_matrix([0.0, 0.0, 90.0]) @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], atol=1e-12)


def test_translation_fraction_follows_the_physical_axes_on_a_sagittal_image():
    # stored sagittally: index x runs along AP (12 voxels of 1 mm), index y along SI (40 x 1 mm), index z along LR (8 x 2 mm)
    direction = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    s = blob_sample((8, 40, 12), spacing=(1.0, 1.0, 2.0), direction=direction)
    for seed in range(4):
        t = Compose([RandomAffine(translation_fraction=0.1)])(s, seed=seed).history[1]["params"]["translation"]
        assert abs(t[0]) <= 0.1 * 16 + 1e-9  # LR: 8 slices x 2 mm
        assert abs(t[1]) <= 0.1 * 12 + 1e-9  # AP: 12 mm
        assert abs(t[2]) <= 0.1 * 40 + 1e-9  # SI: 40 mm
    big = max(abs(Compose([RandomAffine(translation_fraction=[0, 0, 0.1])])(s, seed=k).history[1]["params"]["translation"][2])
              for k in range(20))
    assert big > 0.1 * 12  # SI shifts use the 40 mm extent, not the stored axis' 12


@pytest.mark.parametrize("name", ["x", "Y", "z"])
def test_a_physical_axis_is_not_spelled_like_an_index_axis(name):
    """'x' meant LR in a flip but the stored grid's x axis in a k-space artefact: two meanings of one letter."""
    with pytest.raises(ParameterError, match=r"index axis .* physical axes are LR, AP, SI"):
        Flip(axes=[name])
