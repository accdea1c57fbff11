"""NIfTI files judged as the standard says: size from the header, scaling, qform/sform."""

from __future__ import annotations

import gzip
import struct
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from medaug.data import Image, load, read_header, save
from medaug.errors import ImageReadError, InvalidImageError


def _small(path: Path) -> bytes:
    save(Image(np.arange(6 * 10 * 12, dtype=np.int16).reshape(6, 10, 12)), path)
    return gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()


@pytest.mark.parametrize("dtype", ["int16", "float32"])
def test_gigabytes_after_the_voxels_are_refused_without_reading_them(tmp_path, dtype):
    """A 4 GiB run of zeros after a 1.4 kB image, 4 MB on disk (concatenated gzip members decompress as one stream)."""
    image = Image(np.ones((6, 10, 12), dtype=dtype))
    save(image, tmp_path / "plain.nii")
    path = tmp_path / "trailing.nii.gz"
    zeros = gzip.compress(bytes(64 * 2**20), compresslevel=1)
    path.write_bytes(gzip.compress((tmp_path / "plain.nii").read_bytes()) + zeros * 64)
    t0 = time.perf_counter()
    with pytest.raises(ImageReadError, match="more than 1 MiB of data after the .* bytes its header describes"):
        load(path)
    assert time.perf_counter() - t0 < 1.0


def test_padding_after_the_voxels_is_accepted(tmp_path):
    raw = _small(tmp_path / "a.nii")
    for name, data in (("pad.nii", raw + bytes(4096)), ("pad.nii.gz", gzip.compress(raw + bytes(4096)))):
        (tmp_path / name).write_bytes(data)
        assert load(tmp_path / name).shape == (6, 10, 12)


# ---------------------------------------------------------------- scaling (scl_slope, scl_inter)
STORED = np.arange(24, dtype=np.int16).reshape(2, 3, 4)


def _with_scaling(path: Path, slope: float, inter: float) -> Path:
    nib.save(nib.Nifti1Image(STORED.T, np.diag([1.0, 1.0, 2.0, 1.0])), path)
    raw = bytearray(path.read_bytes())
    struct.pack_into("<2f", raw, 112, slope, inter)  # scl_slope, scl_inter
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize("slope", [0.0, float("nan"), float("inf")])
def test_a_slope_of_zero_or_not_finite_means_no_scaling(tmp_path, slope):
    """ITK read these as slope 1 and still added scl_inter, as float32; the standard (and nibabel) say: no scaling."""
    image = load(_with_scaling(tmp_path / "a.nii", slope, 100.0))
    assert image.dtype == np.int16
    np.testing.assert_array_equal(image.array, STORED)


def test_the_voxels_are_sized_by_the_datatype_not_bitpix(tmp_path):
    """An RGB24 image whose bitpix says 8: sized by bitpix, a file holding a third of its voxels passed the truncation
    check and niftilib read the rest from uninitialised memory (found by fuzzing: loads differed run to run)."""
    nib.save(nib.Nifti1Image(np.zeros((7, 6, 1), np.uint8), np.eye(4)), tmp_path / "grey.nii")
    raw = bytearray((tmp_path / "grey.nii").read_bytes())
    struct.pack_into("<2h", raw, 70, 128, 8)  # datatype RGB24, bitpix 8
    path = tmp_path / "rgb.nii"
    path.write_bytes(bytes(raw[: 352 + 42]))
    with pytest.raises(ImageReadError, match="is truncated: the header describes 478 bytes"):
        load(path)


def test_voxels_made_infinite_by_the_scaling_are_named_once(tmp_path):
    """The message named the file twice ('a.nii: a.nii: 64 voxel(s) are NaN or infinite')."""
    img = nib.Nifti1Image(np.full((4, 4, 4), 3e38, np.float32), np.eye(4))
    img.header.set_slope_inter(10.0, 0.0)
    nib.save(img, tmp_path / "overflow.nii")
    with pytest.raises(InvalidImageError) as info:
        load(tmp_path / "overflow.nii")
    assert str(info.value) == f"{tmp_path / 'overflow.nii'}: 64 voxel(s) are NaN or infinite; clean the image before augmenting"


def test_a_valid_slope_scales(tmp_path):
    image = load(_with_scaling(tmp_path / "a.nii", 2.0, -1.0))
    np.testing.assert_array_equal(image.array, STORED * 2.0 - 1.0)


@pytest.mark.parametrize("inter", [float("nan"), float("inf")])
def test_a_valid_slope_with_a_non_finite_intercept_is_refused(tmp_path, inter):
    with pytest.raises(InvalidImageError, match=r"valid scl_slope \(2\) but a non-finite scl_inter"):
        load(_with_scaling(tmp_path / "a.nii", 2.0, inter))


# ---------------------------------------------------------------- geometry (qform, sform)
def _lps(affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(origin, spacing, direction) in ITK's LPS convention of a nibabel (RAS) affine."""
    m = np.diag([-1.0, -1.0, 1.0]) @ affine[:3]
    spacing = np.linalg.norm(m[:, :3], axis=0)
    return m[:, 3], spacing, m[:, :3] / spacing


def _assert_place(image: Image, affine: np.ndarray) -> None:
    origin, spacing, direction = _lps(affine)
    np.testing.assert_allclose(image.origin, origin, atol=1e-3)
    np.testing.assert_allclose(image.spacing, spacing, rtol=1e-5)
    np.testing.assert_allclose(image.direction, direction, atol=1e-5)


def _two_forms(path: Path, qform: np.ndarray, sform: np.ndarray, qcode: int, scode: int) -> Path:
    img = nib.Nifti1Image(STORED.T, None)
    img.set_qform(qform, code=qcode)
    img.set_sform(sform, code=scode)
    nib.save(img, path)
    return path


QFORM = np.array([[1.0, 0, 0, 10], [0, 1, 0, 20], [0, 0, 1, 30], [0, 0, 0, 1]])
SFORM = np.array([[0.0, -1.2, 0, -5], [1.2, 0, 0, -6], [0, 0, 2.5, -7], [0, 0, 0, 1]])  # rotated 90 degrees, other sizes


@pytest.mark.parametrize(("qcode", "scode"), [(1, 1), (1, 2), (2, 2), (1, 4)])
def test_disagreeing_forms_use_the_sform_and_warn_naming_both(tmp_path, qcode, scode):
    """ITK took the qform for (1, 2), (2, 2), (1, 4) and the spacing from pixdim for (1, 1); nibabel: the sform."""
    path = _two_forms(tmp_path / "a.nii.gz", QFORM, SFORM, qcode, scode)
    with pytest.warns(UserWarning, match="qform and the sform of its NIfTI header disagree") as caught:
        image = load(path)
    text = str(caught[0].message)
    assert "qform: origin (-10, -20, 30) mm" in text and "sform: origin (5, 6, -7) mm" in text
    assert f"using the sform (sform_code {scode} > 0), as nibabel does" in text and str(path) in text
    _assert_place(image, nib.load(path).affine)
    with pytest.warns(UserWarning, match="disagree"):
        assert read_header(path)["spacing"] == pytest.approx((1.2, 1.2, 2.5))


@pytest.mark.parametrize(("qcode", "scode"), [(1, 1), (1, 2), (2, 2)])
def test_a_4d_image_of_channels_gets_the_same_geometry_as_its_volumes(tmp_path, qcode, scode):
    """A BraTS-style 4D file: ITK read its qform (or pixdim) whatever the codes; the channels must sit where nibabel puts them."""
    img = nib.Nifti1Image(np.stack([STORED.T, STORED.T + 1, STORED.T + 2], axis=-1), None)
    img.set_qform(QFORM, code=qcode)
    img.set_sform(SFORM, code=scode)
    path = tmp_path / "brats.nii.gz"
    nib.save(img, path)
    with pytest.warns(UserWarning, match="disagree"):
        image = load(path)
    assert image.channels == 3 and image.shape == STORED.shape
    _assert_place(image, nib.load(path).affine)
    np.testing.assert_array_equal(image.channel(2).array, STORED + 2)
    with pytest.warns(UserWarning, match="disagree"):
        header = read_header(path)
    assert header["shape"] == (3, *STORED.shape) and header["spacing"][:3] == pytest.approx((1.2, 1.2, 2.5))
    np.testing.assert_allclose(np.reshape(header["direction"], (4, 4))[:3, :3], image.direction, atol=1e-6)
    with pytest.warns(UserWarning, match="disagree"):
        one = load(path, volume=1)
    assert one.origin == pytest.approx(image.origin) and one.spacing == pytest.approx(image.spacing)


def test_a_sheared_sform_gives_way_to_the_qform_with_a_warning(tmp_path):
    sheared = SFORM.copy()
    sheared[0, 2] = 0.8
    with pytest.warns(UserWarning, match="using the qform: the sform is sheared"):
        image = load(_two_forms(tmp_path / "a.nii", QFORM, sheared, 1, 1))
    _assert_place(image, QFORM)


@settings(max_examples=25, deadline=None)
@given(angles=st.tuples(*[st.floats(-3.1, 3.1)] * 3), spacing=st.tuples(*[st.floats(0.2, 5.0)] * 3),
       origin=st.tuples(*[st.floats(-500, 500)] * 3), codes=st.sampled_from([(1, 0), (0, 1), (1, 1), (2, 1), (1, 3)]))
def test_any_orthonormal_header_reads_as_nibabel_reads_it(tmp_path_factory, angles, spacing, origin, codes):
    from scipy.spatial.transform import Rotation

    affine = np.eye(4)
    affine[:3, :3] = Rotation.from_euler("xyz", angles).as_matrix() * np.array(spacing)
    affine[:3, 3] = origin
    path = _two_forms(tmp_path_factory.mktemp("h") / "a.nii", affine, affine, *codes)
    if codes[1] == 0:  # qform only: near a 180-degree rotation the float32 quaternion fixes the axes to ~1e-3 only,
        w = Rotation.from_matrix(affine[:3, :3] / np.array(spacing)).as_quat()[3]  # and nibabel and niftilib
        assume(abs(w) > 1e-2)  # round it differently (both are "right"); such headers are not compared
    _assert_place(load(path), nib.load(path).affine)


@pytest.mark.parametrize("ext", [".nii", ".nii.gz"])
@pytest.mark.parametrize(("step", "units", "offset"), [(2500.0, "msec", 7.0), (2.0, "sec", 1.5), (1.5, "hz", 0.0),
                                                       (0.0, "unknown", 0.0)])
def test_a_4d_image_keeps_its_time_axis_through_load_augment_save(tmp_path, ext, step, units, offset):
    """pixdim[4], the time units of xyzt_units and toffset come back as they were (ITK's writer gives 1 s, 0)."""
    from medaug import Compose, Sample
    from medaug.intensity import Gamma
    from medaug.spatial import Affine

    data = np.random.default_rng(0).random((5, 6, 7, 3)).astype(np.float32) + 1
    src = nib.Nifti1Image(data, np.diag([2.0, 2.0, 3.0, 1.0]))
    src.header.set_xyzt_units("mm", units)
    src.header["pixdim"][4], src.header["toffset"] = step, offset
    nib.save(src, tmp_path / f"series{ext}")
    image = load(tmp_path / f"series{ext}")
    assert image.channels == 3
    assert image.metadata == {"time_step": step, "time_units": units, "time_offset": offset}
    out = Compose([Affine(rotation=5), Gamma(1.2, lo=1.0, hi=2.0)])(Sample(image=image), seed=0)["image"]  # kept
    save(out, tmp_path / f"back{ext}")
    header = nib.load(tmp_path / f"back{ext}").header
    assert (float(header["pixdim"][4]), header.get_xyzt_units()[1], float(header["toffset"])) == (step, units, offset)
    assert load(tmp_path / f"back{ext}").metadata == image.metadata
    assert load(tmp_path / f"series{ext}", volume=1).metadata == {}  # one volume: no time axis
