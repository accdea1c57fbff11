"""Image-quality and segmentation metrics against hand-computed values."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from medaug import GeometryError, Image, ParameterError, shepp_logan_2d, shepp_logan_3d
from medaug.metrics import (
    dice,
    hausdorff,
    image_metrics,
    iou,
    jsonable,
    mae,
    mse,
    psnr,
    segmentation_metrics,
    ssim,
    surface_distances,
)


def _label(arr, spacing):
    return Image(np.asarray(arr, np.uint8), spacing=spacing, is_label=True)


# ---------------------------------------------------------------- segmentation
def test_dice_iou_hausdorff_2d_anisotropic_by_hand():
    a = np.zeros((8, 10), np.uint8)
    a[2:5, 2:5] = 1  # 3 x 3 square
    b = np.zeros_like(a)
    b[2:5, 3:6] = 1  # shifted one voxel along x
    c = np.zeros_like(a)
    c[3:6, 2:5] = 1  # shifted one voxel along y
    sp = (2.0, 0.5)  # x: 2 mm, y: 0.5 mm
    A, B, C = _label(a, sp), _label(b, sp), _label(c, sp)
    # overlap 6 of 9 + 9 voxels: Dice 12/18, IoU 6/12
    assert dice(A, B) == pytest.approx(2 / 3) and iou(A, B) == pytest.approx(0.5)
    assert hausdorff(A, B) == pytest.approx(2.0)  # one voxel along x
    assert hausdorff(A, C) == pytest.approx(0.5)  # one voxel along y
    # contour-to-contour distances: of the 8 contour voxels of A, 4 lie on B's contour, the 3 of the left
    # column are one x-step (2 mm) from it, and the middle of the right column is B's centre, one y-step (0.5 mm) away
    da, db = surface_distances(A, B)
    assert sorted(da.tolist()) == [0.0, 0.0, 0.0, 0.0, 0.5, 2.0, 2.0, 2.0]
    m = segmentation_metrics(A, B)[1]
    assert m["hd95_mm"] == pytest.approx(2.0)
    assert m["asd_mm"] == pytest.approx((6.5 + 6.5) / 16)
    assert m["voxels_a"] == m["voxels_b"] == 9


def test_hausdorff_3d_in_mm_with_anisotropic_spacing():
    a = np.zeros((10, 10, 10), np.uint8)
    a[3:6, 3:6, 3:6] = 1
    b = np.zeros_like(a)
    b[5:8, 3:6, 3:6] = 1  # two slices up along z
    sp = (1.0, 1.0, 2.5)
    m = segmentation_metrics(_label(a, sp), _label(b, sp))[1]
    assert m["hausdorff_mm"] == pytest.approx(5.0)
    assert m["dice"] == pytest.approx(2 * 9 / 54) and m["iou"] == pytest.approx(9 / 45)
    # plain arrays with an explicit spacing give the same
    assert hausdorff(a, b, spacing=sp) == pytest.approx(5.0)
    assert hausdorff(a, b) == pytest.approx(2.0)  # 1 mm voxels


def test_multi_label_values_missing_labels_and_identity():
    s = shepp_logan_3d(24, seed=0, spacing=(1.0, 1.0, 2.0))
    lab = s["label"]
    same = segmentation_metrics(lab, lab)
    assert sorted(same) == [1, 2, 3, 4]
    for row in same.values():
        assert row["dice"] == 1.0 and row["iou"] == 1.0
        assert row["hausdorff_mm"] == 0.0 and row["hd95_mm"] == 0.0 and row["asd_mm"] == 0.0
    arr = lab.array.copy()
    arr[arr == 4] = 2  # the lesion is missed
    rows = segmentation_metrics(lab, lab.with_data(arr))
    assert rows[4]["dice"] == 0.0 and math.isinf(rows[4]["hausdorff_mm"]) and rows[4]["voxels_b"] == 0
    assert 0.9 < rows[2]["dice"] < 1.0
    only = segmentation_metrics(lab, lab, labels=[3])
    assert list(only) == [3]
    assert json.loads(json.dumps(jsonable(rows)))["4"]["hausdorff_mm"] == "inf"


def test_geometry_mismatch_is_a_geometry_error():
    a = _label(np.ones((4, 4)), (1.0, 1.0))
    with pytest.raises(GeometryError, match="spacing differs"):
        dice(a, _label(np.ones((4, 4)), (1.0, 2.0)))
    with pytest.raises(GeometryError, match="size differs"):
        segmentation_metrics(a, _label(np.ones((4, 5)), (1.0, 1.0)))
    with pytest.raises(GeometryError):
        psnr(np.zeros((3, 3)), np.zeros((3, 4)))


# ---------------------------------------------------------------- image quality
@pytest.mark.parametrize("ndim", [2, 3])
def test_psnr_and_ssim_of_an_image_with_itself(ndim):
    img = (shepp_logan_2d(48) if ndim == 2 else shepp_logan_3d(24))["image"]
    m = image_metrics(img, img)
    assert m["psnr"] == math.inf and m["ssim"] == pytest.approx(1.0, abs=1e-12)
    assert m["mae"] == 0.0 and m["mse"] == 0.0
    assert m["data_range"] == float(img.array.max() - img.array.min()) and m["data_range_source"] == "A max - min"


def test_psnr_mae_mse_by_hand_and_ssim_as_scikit_image():
    a = np.linspace(0.0, 100.0, 20 * 30).reshape(20, 30)
    b = a + 2.0
    assert mse(a, b) == pytest.approx(4.0) and mae(a, b) == pytest.approx(2.0)
    assert psnr(a, b) == pytest.approx(10 * np.log10(100.0**2 / 4.0))
    assert psnr(a, b, data_range=50.0) == pytest.approx(10 * np.log10(50.0**2 / 4.0))
    rng = np.random.default_rng(0)
    c = a + rng.normal(0, 5, a.shape)
    assert ssim(a, c) == pytest.approx(structural_similarity(a, c, data_range=100.0))
    small = np.arange(5 * 6 * 40, dtype=float).reshape(5, 6, 40)
    assert ssim(small, small) == pytest.approx(1.0)  # window shrunk to the smallest axis
    with pytest.raises(ParameterError, match="constant"):
        psnr(np.ones((8, 8)), np.zeros((8, 8)))
    with pytest.raises(ParameterError):
        ssim(np.zeros((2, 9)), np.zeros((2, 9)), data_range=1.0)


# ---------------------------------------------------------------- surface distances: MONAI and an analytic case
def _sphere(shape, centre, radius):
    grids = np.meshgrid(*[np.arange(s, dtype=float) for s in shape], indexing="ij")
    return sum((g - c) ** 2 for g, c in zip(grids, centre)) <= radius**2


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.8, 1.0, 2.0)])
def test_hd95_and_asd_agree_with_monai(spacing):
    monai_metrics = pytest.importorskip("monai.metrics")
    import torch

    shape = (40, 40, 40)
    a = _sphere(shape, (20, 20, 18.5), 12)
    b = _sphere(shape, (20, 20, 21.5), 12)  # 3 voxels apart along z (the case)
    ours = segmentation_metrics(_label(a, spacing), _label(b, spacing))[1]
    ta, tb = (torch.from_numpy(m[None, None].astype(np.float32)) for m in (a, b))
    sp = list(spacing[::-1])  # MONAI: array order
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # MONAI 1.6 warns about its own deprecated argument
        hd95 = float(monai_metrics.compute_hausdorff_distance(ta, tb, include_background=True, percentile=95,
                                                              spacing=sp))
        asd = float(monai_metrics.compute_average_surface_distance(ta, tb, include_background=True, symmetric=True,
                                                                   spacing=sp))
    assert ours["hd95_mm"] == pytest.approx(hd95, rel=1e-6)
    assert ours["asd_mm"] == pytest.approx(asd, rel=1e-6)
    if spacing == (1.0, 1.0, 1.0):
        # continuous spheres 3 apart: mean |3 cos(theta)| over the sphere = 1.5; voxelised, close to it
        assert abs(ours["asd_mm"] - 1.5) < 0.15


def test_surface_distances_of_nested_squares_by_hand():
    """Squares of half-width 10 and 12 voxels about one centre, anisotropic voxels (0.5 x 2 mm).

    The surfaces are the two square rings of voxel centres; each distance is the nearest centre of
    the other ring, in mm, counted here over the rings directly.  With isotropic voxels every inner
    voxel is 2 voxels from the outer ring; with these, the near x-sides (0.5 mm steps) often win.
    """
    sx, sy = 0.5, 2.0
    n = 41
    c = 20
    inner = np.zeros((n, n), bool)
    inner[c - 10 : c + 11, c - 10 : c + 11] = True
    outer = np.zeros((n, n), bool)
    outer[c - 12 : c + 13, c - 12 : c + 13] = True
    da, db = surface_distances(inner, outer, spacing=(sx, sy))

    def ring(h):
        pts = {(y, x) for y in range(-h, h + 1) for x in (-h, h)} | {(y, x) for x in range(-h, h + 1) for y in (-h, h)}
        return sorted(pts)

    def nearest(p, targets):
        return min(np.hypot((p[0] - t[0]) * sy, (p[1] - t[1]) * sx) for t in targets)

    expected_a = [nearest(p, ring(12)) for p in ring(10)]
    expected_b = [nearest(p, ring(10)) for p in ring(12)]
    np.testing.assert_allclose(sorted(da), sorted(expected_a))
    np.testing.assert_allclose(sorted(db), sorted(expected_b))
    iso_a, _ = surface_distances(inner, outer, spacing=(1.0, 1.0))
    assert set(np.round(iso_a, 9)) == {2.0}
    m = segmentation_metrics(inner.astype(np.uint8), outer.astype(np.uint8), spacing=(sx, sy))[1]
    assert m["asd_mm"] == pytest.approx(np.mean(expected_a + expected_b))
