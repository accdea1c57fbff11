"""The planes the review page draws: radiological orientation, markers from the direction cosines, raw encoding,
window presets."""

from __future__ import annotations

import numpy as np
import pytest

import medaug
from medaug.preview.review._http import HttpError
from medaug.preview.review.images import ImageRef, ImageSource, markers
from medaug.preview.windows import auto_window, window_presets
from medaug.spatial._axes import rotation_matrix


def volume(tmp_path, direction=None, dtype=np.int16, name="v.nii.gz"):
    """A (z, y, x) = (4, 5, 6) ramp with distinct values, saved and returned as a ref and the array."""
    arr = np.arange(4 * 5 * 6).reshape(4, 5, 6).astype(dtype)
    path = tmp_path / name
    medaug.save(medaug.Image(arr, spacing=(0.5, 1.0, 2.0), direction=direction), path)
    return ImageRef(path.resolve()), arr


def plane(src: ImageSource, ref: ImageRef, axis: int, index: int) -> np.ndarray:
    meta = src.meta(ref)
    shape = meta["planes"][axis]["shape"]
    dtype = "<i2" if meta["dtype"] == "int16" else "<f4"
    return np.frombuffer(src.plane(ref, axis, index), dtype=dtype).reshape(shape)


def test_identity_volume_planes_markers_and_spacing(tmp_path):
    ref, arr = volume(tmp_path)
    src = ImageSource("mri")
    meta = src.meta(ref)
    assert [p["name"] for p in meta["planes"]] == ["axial", "coronal", "sagittal"]
    assert [p["slices"] for p in meta["planes"]] == [4, 5, 6]
    assert [p["spacing"] for p in meta["planes"]] == [[1.0, 0.5], [2.0, 0.5], [2.0, 1.0]]  # (row, column) mm
    assert [p["markers"] for p in meta["planes"]] == [
        {"left": "R", "right": "L", "top": "A", "bottom": "P"},
        {"left": "R", "right": "L", "top": "S", "bottom": "I"},
        {"left": "A", "right": "P", "top": "S", "bottom": "I"}]
    assert np.array_equal(plane(src, ref, 0, 2), arr[2])
    assert np.array_equal(plane(src, ref, 1, 3), np.flipud(arr[:, 3, :]))  # superior up
    assert np.array_equal(plane(src, ref, 2, 1), np.flipud(arr[:, :, 1]))
    assert meta["dtype"] == "int16" and meta["range"] == [0.0, 119.0] and meta["unit"] == ""


def test_a_flipped_volume_is_shown_the_same_way(tmp_path):
    """Stored right-to-left and anterior-to-posterior reversed (RAS-like): turned back for display, not resampled."""
    ref, arr = volume(tmp_path, direction=np.diag([-1.0, -1.0, 1.0]))
    src = ImageSource("mri")
    assert src.meta(ref)["planes"][0]["markers"] == {"left": "R", "right": "L", "top": "A", "bottom": "P"}
    assert np.array_equal(plane(src, ref, 0, 2), arr[2, ::-1, ::-1])


def test_oblique_markers_follow_the_direction_cosines(tmp_path):
    ref, _ = volume(tmp_path, direction=rotation_matrix([0.0, 0.0, 35.0]))  # 35 degrees about the SI axis
    planes = ImageSource("mri").meta(ref)["planes"]
    # the x index axis points along (0.82, 0.57, 0): mostly left, partly posterior
    assert planes[0]["markers"] == {"left": "RA", "right": "LP", "top": "AL", "bottom": "PR"}
    assert planes[2]["markers"] == {"left": "AL", "right": "PR", "top": "S", "bottom": "I"}
    assert markers(np.array([0.0, 0.0, -1.0]), np.array([1.0, 0.0, 0.0])) == {
        "left": "R", "right": "L", "top": "S", "bottom": "I"}


def test_two_d_images_xray_reads_head_to_feet(tmp_path):
    path = tmp_path / "x.nii.gz"
    medaug.save(medaug.Image(np.zeros((8, 6), np.float32), spacing=(0.2, 0.3)), path)
    ref = ImageRef(path.resolve())
    xray = ImageSource("xray").meta(ref)
    assert xray["planes"] == [{"name": "image", "axis": 0, "shape": [8, 6], "spacing": [0.3, 0.2], "slices": 1,
                               "markers": {"left": "R", "right": "L", "top": "S", "bottom": "I"}}]
    assert ImageSource("ct").meta(ref)["planes"][0]["markers"]["top"] == "A"  # an axial CT slice
    assert xray["dtype"] == "float32"
    src = ImageSource("xray")
    with pytest.raises(HttpError) as info:
        src.plane(ref, 1, None)
    assert info.value.status == 400


def test_bad_requests_and_channels(tmp_path):
    ref, _ = volume(tmp_path)
    src = ImageSource(None)
    for axis, index, channel in ((3, 0, 0), (0, 4, 0), (0, -1, 0), (0, 0, 1)):
        with pytest.raises(HttpError) as info:
            src.plane(ref, axis, index, channel)
        assert info.value.status == 400
    with pytest.raises(HttpError) as info:
        src.plane(ref, 0, 0, layer="label")
    assert info.value.status == 404 and str(tmp_path) not in info.value.message
    assert src.meta(ref)["channels"] == 1


def test_modality_guess_and_ct_presets(tmp_path):
    path = tmp_path / "ct.nii.gz"
    medaug.save(medaug.Image(np.full((6, 6), -1000, np.int16)), path)
    src = ImageSource(None)
    meta = src.meta(ImageRef(path.resolve()))
    assert src.modality == "ct" and meta["unit"] == "HU"
    assert [w["name"] for w in meta["windows"]] == ["abdomen", "brain", "subdural", "lung", "bone", "auto"]
    assert {w["name"]: (w["level"], w["width"]) for w in meta["windows"]}["lung"] == (-600, 1500)


def test_auto_window_ignores_the_background():
    """A head MRI: mostly dark background, bright white matter; the window must not saturate the white matter."""
    rng = np.random.default_rng(0)
    img = rng.normal(5, 2, (40, 40, 40))  # background noise
    img[10:30, 10:30, 10:30] = rng.normal(600, 20, (20, 20, 20))  # grey matter
    img[15:25, 15:25, 15:25] = rng.normal(900, 20, (10, 10, 10))  # white matter, 1.6 % of the voxels
    lo, hi = auto_window(img)
    assert 500 < lo < 600 and hi > 900
    assert [name for name, *_ in window_presets("mri", img)] == ["auto", "full"]
