"""Preprocessing on the grid: Otsu foreground crop, label crop, Resample's extent, Reorient, Resize."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from medaug import Compose, Image, ParameterError, Sample, pipeline_from_config, replay, shepp_logan_2d, shepp_logan_3d
from medaug.data.io import image_to_sitk
from medaug.spatial import (
    Affine,
    Crop,
    CropForeground,
    CropToLabel,
    Flip,
    Reorient,
    Resample,
    Resize,
    crop_foreground,
)
from medaug.spatial.preprocess import orientation_of

from ..conftest import blob_sample, oblique_direction


def _box_of(mask: np.ndarray) -> tuple[list[int], list[int]]:
    idx = np.nonzero(mask)
    lo = [int(i.min()) for i in idx]
    hi = [int(i.max()) for i in idx]
    return lo, [h - l + 1 for l, h in zip(lo, hi)]


# ---------------------------------------------------------------- foreground crop
def test_otsu_crop_of_phantom_in_air_finds_its_box_and_the_air_median():
    s = shepp_logan_3d(40, seed=2)
    head = s["label"].array != 0  # the phantom: everything that is not air
    start, size = _box_of(head)
    out = Compose([CropForeground()])(s)
    rec = out.history[1]
    assert rec["name"] == "Crop"
    assert rec["params"]["start"] == start and rec["params"]["size"] == size
    assert out.metadata["background"] == {"image": -1000.0}
    assert out["image"].shape == tuple(size)
    # every voxel stays where it was: exact copy of the box
    sl = tuple(slice(a, a + n) for a, n in zip(start, size))
    np.testing.assert_array_equal(out["image"].array, s["image"].array[sl])
    np.testing.assert_array_equal(out["label"].array, s["label"].array[sl])
    p0 = s["image"].grid.index_to_physical(np.array(start[::-1], float)[None])
    np.testing.assert_allclose(out["image"].origin, p0[0])
    # the plain function agrees
    img, air = crop_foreground(s["image"])
    assert air == -1000.0 and img.shape == tuple(size)
    np.testing.assert_array_equal(img.array, out["image"].array)


def test_synthetic_box_with_noise_and_margin_in_mm():
    rng = np.random.default_rng(0)
    arr = rng.normal(-1000.0, 5.0, (20, 30, 40)).astype(np.float32)
    arr[5:12, 8:20, 10:31] = rng.normal(40.0, 5.0, (7, 12, 21))
    img = Image(arr, spacing=(1.0, 1.0, 2.5), origin=(3.0, -4.0, 10.0))
    cropped, air = crop_foreground(img, margin=3.0)
    # 3 mm is 3 voxels in x and y, ceil(3 / 2.5) = 2 slices in z
    assert cropped.shape == (7 + 4, 12 + 6, 21 + 6)
    np.testing.assert_allclose(cropped.origin, img.grid.index_to_physical(np.array([[7.0, 5.0, 3.0]]))[0])
    np.testing.assert_allclose(air, np.median(arr[arr < -500]), atol=1e-3)
    # the margin is clipped at the image border: nothing is padded
    cropped, _ = crop_foreground(img, margin=100.0)
    assert cropped.shape == arr.shape


def test_background_median_becomes_the_fill_of_later_spatial_transforms():
    s = shepp_logan_2d(64, seed=0)
    # no margin: the crop's border is skull, so the border median would be a wrong fill
    out = Compose([CropForeground(), Affine(rotation=40.0)])(s)
    assert out.metadata["resampling"]["fill"]["image"] == -1000.0
    corners = out["image"].array[[0, 0, -1, -1], [0, -1, 0, -1]]
    np.testing.assert_array_equal(corners, -1000.0)
    # in a later run of the pipeline too
    out = Compose([CropForeground(), Flip(axes=["LR"]), Affine(rotation=40.0)])(s)
    assert out.metadata["resampling"]["fill"]["image"] == -1000.0
    # replaying the history gives the same result
    again = replay(out.history)(s)
    np.testing.assert_array_equal(again["image"].array, out["image"].array)


def test_foreground_crop_after_resample_is_computed_in_physical_space():
    s = shepp_logan_3d(32, seed=1, spacing=(1.0, 1.0, 2.0))
    out = Compose([Resample(spacing=2.0), CropForeground()])(s)
    head = out["label"].array != 0
    ref = Compose([Resample(spacing=2.0)])(s)["label"].array != 0
    # every head voxel of the resampled volume is kept
    assert head.sum() == ref.sum()
    assert all(n <= m for n, m in zip(out["image"].shape, ref.shape))


def test_config_names_and_errors():
    p = pipeline_from_config([{"CropForeground": {"margin": 2}}, {"CropToLabel": {"values": [2], "margin": [1, 1, 2]}}])
    assert [type(t).__name__ for t in p.transforms] == ["CropForeground", "CropToLabel"]
    with pytest.raises(ParameterError, match="margin"):
        CropForeground(margin=-1)
    with pytest.raises(ParameterError, match="label map"):
        Compose([CropToLabel()])(Sample(image=Image(np.zeros((8, 8), np.float32))))
    s = blob_sample((16, 16))
    with pytest.raises(ParameterError, match="no voxel"):
        Compose([CropToLabel(values=7)])(s)
    with pytest.raises(Exception, match="constant"):
        crop_foreground(Image(np.zeros((8, 8), np.float32)))


def test_crop_to_label_with_margin():
    s = blob_sample((24, 28, 20), spacing=(1.0, 1.0, 2.0))
    core = s["label"].array == 2
    start, size = _box_of(core)
    out = Compose([CropToLabel(values=[2], margin=2.0)])(s)
    # 2 mm: 2 voxels in x and y, 1 slice in z
    exp_start = [start[0] - 1, start[1] - 2, start[2] - 2]
    assert out.history[1]["params"] == {"start": exp_start, "size": [size[0] + 2, size[1] + 4, size[2] + 4], "background": None}
    assert (out["label"].array == 2).sum() == core.sum()
    out = Compose([CropToLabel()])(s)
    assert out["label"].shape == tuple(_box_of(s["label"].array != 0)[1])


# ---------------------------------------------------------------- Resample (existing transform)
@pytest.mark.parametrize("oblique", [False, True])
def test_resample_1x1x3_to_isotropic_keeps_extent_and_origin(oblique):
    z = np.arange(10, dtype=np.float32)
    arr = np.broadcast_to((z * 30.0)[:, None, None], (10, 12, 14)).copy()
    direction = oblique_direction(3) if oblique else None
    img = Image(arr, spacing=(1.0, 1.0, 3.0), origin=(5.0, -7.0, 20.0), direction=direction)
    out = Compose([Resample(spacing=1.0)])(Sample(image=img))["image"]
    g0, g1 = img.grid, out.grid
    assert out.shape == (30, 12, 14) and g1.spacing == (1.0, 1.0, 1.0)
    np.testing.assert_allclose(g1.extent, g0.extent)
    np.testing.assert_allclose(g1.direction, g0.direction)
    # the box's corner (outer edge of the first voxel) and the centre stay put
    edge0 = g0.index_to_physical(np.array([[-0.5, -0.5, -0.5]]))
    edge1 = g1.index_to_physical(np.array([[-0.5, -0.5, -0.5]]))
    np.testing.assert_allclose(edge1, edge0, atol=1e-9)
    np.testing.assert_allclose(g1.center(), g0.center(), atol=1e-9)
    # values: linear in z, interpolated between the input slices (inside the input's first and last centres)
    zc = (np.arange(30) - 1.0) / 3.0  # output slice k sits at input slice (k - 1) / 3
    inside = (zc >= 0) & (zc <= 9)
    np.testing.assert_allclose(out.array[inside, 6, 7], 30.0 * zc[inside], atol=1e-3)


# ---------------------------------------------------------------- Reorient
_ORIENTATIONS = ["RAS", "LPS", "LAS", "PIR", "SAL", "IRP"]


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("orientation", _ORIENTATIONS)
def test_reorient_is_an_exact_permutation_matching_dicomorient(orientation, backend):
    rng = np.random.default_rng(3)
    arr = rng.normal(0, 100, (5, 6, 7)).astype(np.float32)
    lab = rng.integers(0, 4, (5, 6, 7)).astype(np.uint8)
    grid_kw = dict(spacing=(0.7, 1.1, 2.5), origin=(10.0, -3.0, 4.0))
    s = Sample(image=Image(arr, **grid_kw), label=Image(lab, is_label=True, **grid_kw))
    out = Compose([Reorient(orientation)], backend=backend)(s)
    ref = sitk.DICOMOrient(image_to_sitk(s["image"]), orientation)
    ref_lab = sitk.DICOMOrient(image_to_sitk(s["label"]), orientation)
    # bit-identical values, same geometry as SimpleITK
    np.testing.assert_array_equal(out["image"].array, sitk.GetArrayFromImage(ref))
    np.testing.assert_array_equal(out["label"].array, sitk.GetArrayFromImage(ref_lab))
    g = out["image"].grid
    assert g.size_xyz == ref.GetSize()
    np.testing.assert_allclose(g.spacing, ref.GetSpacing())
    np.testing.assert_allclose(g.origin, ref.GetOrigin(), atol=1e-9)
    np.testing.assert_allclose(g.direction.ravel(), ref.GetDirection(), atol=1e-12)
    assert orientation_of(g) == orientation
    assert out.metadata["resampling"]["lattice_error_voxels"] == 0.0


def test_reorient_oblique_and_permuted_inputs_match_dicomorient():
    rng = np.random.default_rng(4)
    arr = rng.normal(0, 100, (6, 5, 7)).astype(np.float32)
    sagittal = np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float)  # index x → A-P, y → I-S, z → R-L
    for direction in (sagittal, oblique_direction(3) @ sagittal):
        img = Image(arr, spacing=(0.8, 1.0, 3.0), origin=(1.0, 2.0, 3.0), direction=direction)
        for code in ("RAS", "LPS"):
            out = Reorient(code)(Sample(image=img))["image"]
            ref = sitk.DICOMOrient(image_to_sitk(img), code)
            np.testing.assert_array_equal(out.array, sitk.GetArrayFromImage(ref))
            np.testing.assert_allclose(out.grid.direction.ravel(), ref.GetDirection(), atol=1e-9)
            np.testing.assert_allclose(out.grid.origin, ref.GetOrigin(), atol=1e-9)


def test_reorient_2d_and_errors():
    s = shepp_logan_2d(24, seed=0, spacing=(0.5, 1.5))
    out = Reorient("RAS")(s)  # the S letter is ignored in 2D
    np.testing.assert_array_equal(out["image"].array, s["image"].array[::-1, ::-1])
    out = Reorient("PL")(s)  # index x now runs posterior: the array is transposed
    np.testing.assert_array_equal(out["image"].array, s["image"].array.T)
    assert out["image"].spacing == (1.5, 0.5)
    np.testing.assert_allclose(out.points["landmarks"], s.points["landmarks"])
    for bad in ("RAX", "RRS", "RA", 3):
        with pytest.raises(ParameterError):
            Reorient(bad)(shepp_logan_3d(16)) if bad == "RA" else Reorient(bad)


# ---------------------------------------------------------------- Resize
@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_resize_matches_scipy_corner_aligned(backend):
    rng = np.random.default_rng(5)
    arr = ndimage.gaussian_filter(rng.normal(0, 100, (12, 8, 12)), 1.0).astype(np.float32)
    lab = (arr > 0).astype(np.uint8) + (arr > 30).astype(np.uint8)
    grid_kw = dict(spacing=(1.0, 2.0, 3.0), origin=(4.0, 5.0, 6.0), direction=oblique_direction(3))
    s = Sample(image=Image(arr, **grid_kw), label=Image(lab, is_label=True, **grid_kw))
    out = Compose([Resize(1.5)], backend=backend)(s)
    assert out["image"].shape == (18, 12, 18)
    np.testing.assert_allclose(out["image"].array, ndimage.zoom(arr, 1.5, order=1, grid_mode=False), atol=1e-3)
    np.testing.assert_array_equal(out["label"].array, ndimage.zoom(lab, 1.5, order=0, grid_mode=False))
    g0, g1 = s["image"].grid, out["image"].grid
    # corners stay: first and last voxel centres
    np.testing.assert_allclose(g1.corners(), g0.corners(), atol=1e-9)
    ratio = (np.array(g0.size_xyz) - 1) / (np.array(g1.size_xyz) - 1)
    np.testing.assert_allclose(g1.spacing, np.array(g0.spacing) * ratio)


def test_resize_per_axis_2d_and_errors():
    s = shepp_logan_2d(20, seed=0)
    out = Resize([0.5, 2.0])(s)  # array order (y, x)
    assert out["image"].shape == (10, 40)
    ref = ndimage.zoom(s["image"].array, [0.5, 2.0], order=1, grid_mode=False)
    np.testing.assert_allclose(out["image"].array, ref, atol=1e-2)
    with pytest.raises(ParameterError):
        Resize(0)
    with pytest.raises(ParameterError):
        Resize([1, 2, 3])(s)
    thin = Sample(image=Image(np.ones((1, 8, 8), np.float32)))
    with pytest.raises(ParameterError, match="single voxel"):
        Resize(2.0)(thin)


def test_foreground_crop_record_replays():
    t = Crop(start=[1, 2], size=[5, 6], background={"image": -1000.0})
    md: dict = {"background": {"other": 3.0}}
    t.update_metadata(md)
    assert md["background"] == {"other": 3.0, "image": -1000.0}
    assert t.record()["params"]["background"] == {"image": -1000.0}
