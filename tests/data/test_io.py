"""Reading and writing images: round trips, DICOM series and every error case."""

from __future__ import annotations

import gzip
import os
import random
import struct
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from medaug.data import Image, load, read_header, save
from medaug.data.io import image_from_sitk, image_to_sitk
from medaug.errors import ImageReadError, ImageWriteError, InvalidImageError, ParameterError

RNG = np.random.default_rng(0)


def rotation(ax: float, ay: float, az: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def ct_volume(shape: tuple[int, ...] = (6, 20, 24)) -> Image:
    data = RNG.integers(-1000, 2000, shape).astype(np.int16)
    return Image(data, spacing=(0.7, 0.9, 2.5), origin=(-12.5, 30.25, 7.0), direction=rotation(0.3, -0.2, 0.5))


def assert_same_geometry(a: Image, b: Image, atol: float = 1e-5) -> None:
    np.testing.assert_allclose(a.spacing, b.spacing, rtol=1e-6)
    np.testing.assert_allclose(a.origin, b.origin, atol=atol)
    np.testing.assert_allclose(a.direction, b.direction, atol=atol)


def write_dicom_series(folder: Path, hu: np.ndarray, spacing=(0.7, 0.8, 2.5), origin=(10.0, 20.0, 30.0)) -> list[Path]:
    """One DICOM file per slice, with positions and rescale tags, under shuffled names."""
    folder.mkdir(parents=True, exist_ok=True)
    uid = "1.2.826.0.1.3680043.2.1125.1.42"
    names = [f"img{i:03d}" for i in range(hu.shape[0])]
    random.Random(1).shuffle(names)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    writer.SetImageIO("GDCMImageIO")
    paths = []
    for k, name in enumerate(names):
        z = origin[2] + k * spacing[2]
        s = sitk.GetImageFromArray(hu[k : k + 1])  # HU values: GDCM stores (HU - intercept) / slope
        s.SetSpacing(spacing)
        s.SetOrigin((origin[0], origin[1], z))
        for tag, value in {
            "0008|0060": "CT",
            "0010|0010": "Phantom^Test",
            "0020|000d": uid + ".1",
            "0020|000e": uid + ".2",
            "0008|0018": f"{uid}.3.{k}",
            "0020|0013": str(k + 1),
            "0020|0032": f"{origin[0]}\\{origin[1]}\\{z}",
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0028|1052": "-1024",
            "0028|1053": "1",
        }.items():
            s.SetMetaData(tag, value)
        path = folder / name
        writer.SetFileName(str(path))
        writer.Execute(s)
        paths.append(path)
    return paths  # in slice order


# --------------------------------------------------------------- round trips
@pytest.mark.parametrize("ext", [".nii", ".nii.gz", ".mha", ".mhd", ".nrrd", ".nhdr"])
def test_volume_round_trip_keeps_values_dtype_and_geometry(tmp_path: Path, ext: str) -> None:
    img = ct_volume()
    path = tmp_path / f"ct{ext}"
    save(img, path)
    back = load(path)
    assert back.dtype == np.int16
    np.testing.assert_array_equal(back.array, img.array)
    assert_same_geometry(back, img)
    assert back.path == str(path) and not back.is_label
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary files left behind"


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.uint16, np.int32, np.float32, np.float64])
def test_nifti_round_trip_dtypes(tmp_path: Path, dtype: type) -> None:
    data = (RNG.random((4, 5, 6)) * 100).astype(dtype)
    save(Image(data, spacing=(1.5, 0.5, 3.0)), tmp_path / "x.nii.gz")
    back = load(tmp_path / "x.nii.gz")
    assert back.dtype == dtype
    np.testing.assert_array_equal(back.array, data)


def test_label_round_trip_stays_integer(tmp_path: Path) -> None:
    lab = Image(RNG.integers(0, 5, (5, 6, 7)).astype(np.uint8), spacing=(1, 2, 3), is_label=True)
    save(lab, tmp_path / "seg.nii.gz")
    back = load(tmp_path / "seg.nii.gz", label=True)
    assert back.is_label and back.dtype == np.uint8
    np.testing.assert_array_equal(back.array, lab.array)


def test_float_label_with_integer_values_is_cast(tmp_path: Path) -> None:
    save(Image(RNG.integers(0, 300, (3, 4, 5)).astype(np.float32)), tmp_path / "seg.nrrd")
    back = load(tmp_path / "seg.nrrd", label=True)
    assert back.dtype == np.int16 and back.is_label
    save(Image(np.array([[[0.0, 1.0], [2.0, 3.0]]], np.float64)), tmp_path / "small.mha")
    assert load(tmp_path / "small.mha", label=True).dtype == np.uint8


def test_torch_tensor_is_saved(tmp_path: Path) -> None:
    t = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    save(Image(t, spacing=(1, 1, 2)), tmp_path / "t.mha")
    np.testing.assert_array_equal(load(tmp_path / "t.mha").array, t.numpy())


def test_bool_saved_as_uint8(tmp_path: Path) -> None:
    save(Image(np.eye(4, dtype=bool)), tmp_path / "m.nii")
    back = load(tmp_path / "m.nii", label=True)
    assert back.dtype == np.uint8 and back.array.sum() == 4


def test_2d_nifti_round_trip(tmp_path: Path) -> None:
    img = Image(RNG.random((7, 9)).astype(np.float32), spacing=(0.3, 0.6), origin=(1.0, -2.0))
    save(img, tmp_path / "a.nii.gz")
    back = load(tmp_path / "a.nii.gz")
    assert back.ndim == 2
    np.testing.assert_array_equal(back.array, img.array)
    assert_same_geometry(back, img)


@pytest.mark.parametrize("ext,dtype", [(".png", np.uint8), (".png", np.uint16), (".tif", np.uint8),
                                       (".tif", np.float32), (".bmp", np.uint8)])  # fmt: skip
def test_2d_round_trip_lossless(tmp_path: Path, ext: str, dtype: type) -> None:
    data = (RNG.random((30, 40)) * (250 if dtype == np.uint8 else 60000)).astype(dtype)
    path = tmp_path / f"x{ext}"
    save(Image(data, spacing=(0.5, 0.5)), path)
    back = load(path)
    assert back.ndim == 2 and back.dtype == dtype
    np.testing.assert_array_equal(back.array, data)
    if ext in (".png", ".tif"):
        np.testing.assert_allclose(back.spacing, (0.5, 0.5), rtol=1e-6)


def test_jpeg_round_trip_is_close(tmp_path: Path) -> None:
    yy, xx = np.mgrid[0:64, 0:64]
    data = (100 + 60 * np.sin(xx / 9.0) * np.cos(yy / 7.0)).astype(np.uint8)  # smooth: small JPEG error
    save(Image(data), tmp_path / "x.jpg")
    back = load(tmp_path / "x.jpg")
    assert back.shape == data.shape and back.dtype == np.uint8
    assert np.abs(back.array.astype(int) - data).mean() < 3


def test_grey_rgb_png_becomes_grey(tmp_path: Path) -> None:
    grey = RNG.integers(0, 255, (12, 10)).astype(np.uint8)
    rgb = sitk.GetImageFromArray(np.stack([grey] * 3, axis=-1), isVector=True)
    sitk.WriteImage(rgb, str(tmp_path / "g.png"))
    back = load(tmp_path / "g.png")
    assert back.ndim == 2
    np.testing.assert_array_equal(back.array, grey)


def test_save_is_atomic_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "x.nii.gz"
    save(Image(np.zeros((3, 3, 3), np.int16)), path)
    save(Image(np.ones((3, 3, 3), np.int16)), path)
    assert load(path).array.min() == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.nii.gz"]


def test_sitk_helpers_round_trip() -> None:
    img = ct_volume()
    back = image_from_sitk(image_to_sitk(img), is_label=False, path="mem")
    np.testing.assert_array_equal(back.array, img.array)
    assert_same_geometry(back, img, atol=1e-12)


def test_read_header(tmp_path: Path) -> None:
    save(ct_volume(), tmp_path / "h.nrrd")
    h = read_header(tmp_path / "h.nrrd")
    assert h["format"] == "NRRD" and h["shape"] == (6, 20, 24) and h["dtype"] == "int16"
    np.testing.assert_allclose(h["spacing"], (0.7, 0.9, 2.5))


# --------------------------------------------------------------- 4D
def test_4d_nifti_is_read_as_channels_or_one_volume(tmp_path: Path) -> None:
    vols = [sitk.GetImageFromArray(np.full((3, 4, 5), k, np.int16)) for k in range(3)]
    four = sitk.JoinSeries(vols)
    four.SetSpacing((1.5, 2.0, 2.5, 1.0))
    sitk.WriteImage(four, str(tmp_path / "ts.nii.gz"))
    img = load(tmp_path / "ts.nii.gz")
    assert img.channels == 3 and img.shape == (3, 4, 5) and img.array.shape == (3, 3, 4, 5)
    assert [int(img.array[k].max()) for k in range(3)] == [0, 1, 2]
    np.testing.assert_allclose(img.spacing, (1.5, 2.0, 2.5))
    vol = load(tmp_path / "ts.nii.gz", volume=2)
    assert vol.shape == (3, 4, 5) and vol.channels == 1 and (vol.array == 2).all()
    with pytest.raises(ParameterError, match="out of range"):
        load(tmp_path / "ts.nii.gz", volume=3)
    with pytest.raises(InvalidImageError, match="has 3 channels"):
        load(tmp_path / "ts.nii.gz", label=True)


def test_brats_style_4d_nifti_round_trips_with_nibabel(tmp_path: Path) -> None:
    nib = pytest.importorskip("nibabel")
    data = RNG.normal(size=(10, 12, 8, 4)).astype(np.float32)  # nibabel order (x, y, z, sequence)
    affine = np.diag([-1.2, -1.1, 2.0, 1.0])
    affine[:3, 3] = [40.0, 30.0, -20.0]
    nib.save(nib.Nifti1Image(data, affine), tmp_path / "brats.nii.gz")
    img = load(tmp_path / "brats.nii.gz")
    assert img.channels == 4 and img.shape == (8, 12, 10)
    np.testing.assert_array_equal(img.array[2], data[..., 2].T)  # (z, y, x) is the transpose of nibabel's (x, y, z)
    save(img, tmp_path / "back.nii.gz")
    back = nib.load(tmp_path / "back.nii.gz")
    assert back.shape == data.shape
    np.testing.assert_array_equal(np.asarray(back.dataobj), data)
    np.testing.assert_allclose(back.affine, affine, atol=1e-5)


@pytest.mark.parametrize("ext", [".mha", ".nrrd", ".tif"])
def test_multi_component_images_keep_their_components_as_channels(tmp_path: Path, ext: str) -> None:
    arr = RNG.integers(0, 1000, (4, 6, 7, 5)).astype(np.uint16) if ext != ".tif" else \
        RNG.integers(0, 1000, (5, 6, 7)).astype(np.uint16)
    img = Image(arr, spacing=(0.5, 0.6, 0.7)[: arr.ndim - 1], channel_axis=True)
    save(img, tmp_path / f"v{ext}")
    back = load(tmp_path / f"v{ext}")
    assert back.channel_axis and back.channels == arr.shape[0]
    np.testing.assert_array_equal(back.array, arr)


def test_colour_pictures_need_channels_rgb(tmp_path: Path) -> None:
    colour = RNG.integers(0, 255, (12, 10, 4)).astype(np.uint8)
    colour[..., 3] = 255  # fully opaque: alpha carries nothing
    sitk.WriteImage(sitk.GetImageFromArray(colour, isVector=True), str(tmp_path / "c.png"))
    with pytest.raises(InvalidImageError, match=r"channels='rgb' \(command line: --channels rgb\)"):
        load(tmp_path / "c.png")
    img = load(tmp_path / "c.png", channels="rgb")
    assert img.channels == 3 and img.channel_names == ("R", "G", "B")  # opaque alpha dropped
    np.testing.assert_array_equal(img.array, np.moveaxis(colour[..., :3], -1, 0))
    save(img, tmp_path / "back.png")
    np.testing.assert_array_equal(load(tmp_path / "back.png", channels="rgb").array, img.array)
    with pytest.raises(ParameterError, match="channels must be None or 'rgb'"):
        load(tmp_path / "c.png", channels="bgr")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_channels_rgb_refuses_a_picture_with_transparent_pixels(tmp_path: Path, capsys, dtype) -> None:
    from medaug.cli.main import main

    top = np.iinfo(dtype).max
    colour = RNG.integers(0, top, (12, 10, 4)).astype(dtype)
    colour[..., 3] = top
    colour[:3, :4, 3] = 0  # 12 pixels transparent: what lies under them is no image content
    sitk.WriteImage(sitk.GetImageFromArray(colour, isVector=True), str(tmp_path / "c.png"))
    with pytest.raises(InvalidImageError, match="not fully opaque \\(12 of 120 pixels partly or fully transparent\\)"):
        load(tmp_path / "c.png", channels="rgb")
    code = main(["augment", str(tmp_path / "c.png"), "--channels", "rgb", "--preset", "xray", "-n", "1", "-o",
                 str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "c.png: has an alpha channel that is not fully opaque" in err[0], err


def test_pictures_refuse_what_they_cannot_hold(tmp_path: Path) -> None:
    two = Image(np.zeros((2, 5, 6), np.uint8), channel_axis=True)
    with pytest.raises(ImageWriteError, match="has 2 channels"):
        save(two, tmp_path / "x.png")


# --------------------------------------------------------------- DICOM
def test_dicom_series_is_sorted_by_position_and_in_hu(tmp_path: Path) -> None:
    hu = RNG.integers(-1000, 1500, (6, 16, 20)).astype(np.int16)
    write_dicom_series(tmp_path / "series", hu)
    img = load(tmp_path / "series")
    assert img.shape == hu.shape and img.dtype == np.int16
    np.testing.assert_array_equal(img.array, hu)
    np.testing.assert_allclose(img.spacing, (0.7, 0.8, 2.5), rtol=1e-6)
    np.testing.assert_allclose(img.origin, (10.0, 20.0, 30.0))


def test_dicom_series_with_a_missing_slice(tmp_path: Path) -> None:
    paths = write_dicom_series(tmp_path / "series", RNG.integers(-1000, 1500, (6, 8, 8)).astype(np.int16))
    paths[3].unlink()
    with pytest.raises(InvalidImageError, match="missing 1 slice") as info:
        load(tmp_path / "series")
    assert str(info.value).startswith(str(tmp_path / "series"))


def test_dicom_series_with_uneven_spacing(tmp_path: Path) -> None:
    paths = write_dicom_series(tmp_path / "series", RNG.integers(-1000, 1500, (6, 8, 8)).astype(np.int16))
    s = sitk.ReadImage(str(paths[5]))
    s.SetMetaData("0020|0032", "10.0\\20.0\\43.4")  # 3.4 mm after the previous slice instead of 2.5
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    writer.SetFileName(str(paths[5]))
    writer.SetImageIO("GDCMImageIO")
    writer.Execute(s)
    with pytest.raises(InvalidImageError, match="unevenly spaced"):
        load(tmp_path / "series")


def test_folder_with_two_series_warns_and_reads_the_larger(tmp_path: Path) -> None:
    write_dicom_series(tmp_path / "s", RNG.integers(0, 100, (4, 8, 8)).astype(np.int16))
    other = RNG.integers(0, 100, (3, 8, 8)).astype(np.int16)
    for k, p in enumerate(write_dicom_series(tmp_path / "tmp", other)):
        s = sitk.ReadImage(str(p))
        s.SetMetaData("0020|000e", "1.2.3.4.5.99")
        s.SetMetaData("0008|0018", f"1.2.3.4.5.99.{k}")
        w = sitk.ImageFileWriter()
        w.KeepOriginalImageUIDOn()
        w.SetImageIO("GDCMImageIO")
        w.SetFileName(str(tmp_path / "s" / f"other{k}"))
        w.Execute(s)
    with pytest.warns(UserWarning, match=r"2 DICOM series.*1\.2\.826\.0\.1\.3680043\.2\.1125\.1\.42\.2"):
        img = load(tmp_path / "s")
    assert img.shape[0] == 4


def test_single_dicom_file_loads_2d(tmp_path: Path) -> None:
    hu = RNG.integers(-1000, 1500, (1, 10, 12)).astype(np.int16)
    (path,) = write_dicom_series(tmp_path / "one", hu, spacing=(0.6, 0.7, 3.0), origin=(1.0, 2.0, 3.0))
    for suffix in ("", ".dcm"):  # without and with an extension
        img = load(path.rename(path.with_suffix(suffix)))
        assert img.ndim == 2 and img.dtype == np.int16
        np.testing.assert_array_equal(img.array, hu[0])
        np.testing.assert_allclose(img.spacing, (0.6, 0.7), rtol=1e-6)
        np.testing.assert_allclose(img.origin, (1.0, 2.0))


def test_non_axial_single_dicom_slice_warns(tmp_path: Path) -> None:
    one = sitk.GetImageFromArray(RNG.integers(0, 100, (1, 6, 7)).astype(np.int16))
    one.SetDirection((0, 0, 1, 1, 0, 0, 0, -1, 0))  # sagittal
    sitk.WriteImage(one, str(tmp_path / "sag.dcm"))
    with pytest.warns(UserWarning, match="non-axial"):
        img = load(tmp_path / "sag.dcm")
    assert img.shape == (6, 7)
    np.testing.assert_array_equal(img.direction, np.eye(2))


# --------------------------------------------------------------- errors
def _check_error(err: pytest.ExceptionInfo, path: Path) -> None:
    assert err.value.path == str(path)
    assert str(err.value).startswith(str(path))
    assert "Exception thrown" not in str(err.value) and ".cxx" not in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match="file not found") as err:
        load(tmp_path / "nope.nii.gz")
    _check_error(err, tmp_path / "nope.nii.gz")


@pytest.mark.parametrize("name", ["junk.nii.gz", "junk.nii", "junk.mha", "junk.nrrd", "junk.png", "junk.dcm"])
def test_corrupt_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(5).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    with pytest.raises(ImageReadError) as err:
        load(path)
    _check_error(err, path)


def test_truncated_nii_gz(tmp_path: Path) -> None:
    path = tmp_path / "t.nii.gz"
    save(Image(RNG.integers(0, 1000, (20, 30, 40)).astype(np.int16)), path)
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * 0.7)])
    with pytest.raises(ImageReadError, match="truncated") as err:
        load(path)
    _check_error(err, path)


def test_nii_gz_cut_inside_the_data_but_valid_gzip(tmp_path: Path) -> None:
    path = tmp_path / "t.nii.gz"
    save(Image(RNG.integers(0, 1000, (20, 30, 40)).astype(np.int16)), path)
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[: len(data) // 2]))
    with pytest.raises(ImageReadError, match=r"is truncated: .* \(50%\)"):
        load(path)


def test_truncated_nii(tmp_path: Path) -> None:
    path = tmp_path / "t.nii"
    save(Image(RNG.integers(0, 1000, (20, 30, 40)).astype(np.int16)), path)
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * 0.7)])
    with pytest.raises(ImageReadError, match="truncated") as err:
        load(path)
    _check_error(err, path)


def test_truncated_mha(tmp_path: Path) -> None:
    path = tmp_path / "t.mha"
    save(Image(RNG.integers(0, 1000, (20, 30, 40)).astype(np.int16)), path)
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * 0.7)])
    with pytest.raises(ImageReadError) as err:
        load(path)
    _check_error(err, path)


def test_header_larger_than_memory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "huge.nii"
    save(Image(np.zeros((2, 2, 2), np.float64)), path)
    raw = bytearray(path.read_bytes())
    raw[40:56] = struct.pack("<8h", 3, 32767, 32767, 32767, 1, 1, 1, 1)
    path.write_bytes(bytes(raw))
    with pytest.raises(InvalidImageError, match="memory available") as err:
        load(path)
    _check_error(err, path)


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "scan.xyz"
    path.write_bytes(b"hello")
    with pytest.raises(ImageReadError, match=r"unsupported file type '\.xyz'.*NIfTI.*DICOM") as err:
        load(path)
    _check_error(err, path)


def test_folder_without_dicom(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ImageReadError, match="without a DICOM series") as err:
        load(tmp_path)
    _check_error(err, tmp_path)


def test_nan_voxels(tmp_path: Path) -> None:
    data = np.zeros((3, 4, 5), np.float32)
    data[1, 2, 3] = np.nan
    data[0, 0, 0] = np.inf
    save(Image(data), tmp_path / "nan.nii.gz")
    with pytest.raises(InvalidImageError, match="2 voxel") as err:
        load(tmp_path / "nan.nii.gz")
    _check_error(err, tmp_path / "nan.nii.gz")


def test_colour_png_is_refused(tmp_path: Path) -> None:
    rgb = sitk.GetImageFromArray(RNG.integers(0, 255, (12, 10, 3)).astype(np.uint8), isVector=True)
    path = tmp_path / "c.png"
    sitk.WriteImage(rgb, str(path))
    with pytest.raises(InvalidImageError, match="RGB.*convert it to greyscale") as err:
        load(path)
    _check_error(err, path)


def test_complex_image_is_refused(tmp_path: Path) -> None:
    nib = pytest.importorskip("nibabel")
    path = tmp_path / "c.nii"
    nib.save(nib.Nifti1Image(np.full((5, 4, 3), 1 + 2j, np.complex64), np.eye(4)), path)
    with pytest.raises(InvalidImageError, match="has complex voxel values") as err:
        load(path)
    _check_error(err, path)


def test_two_component_metaimage_is_two_channels(tmp_path: Path) -> None:
    """MetaImage stores complex data as two float channels and cannot tell them apart: two channels it is."""
    path = tmp_path / "c.mha"
    sitk.WriteImage(sitk.GetImageFromArray(np.ones((3, 4, 5), np.complex64)), str(path))
    img = load(path)
    assert img.channels == 2 and img.dtype == np.float32


def test_non_integer_label(tmp_path: Path) -> None:
    save(Image(np.full((3, 4, 5), 0.5, np.float32)), tmp_path / "p.nii.gz")
    with pytest.raises(InvalidImageError, match="label map has non-integer values") as err:
        load(tmp_path / "p.nii.gz", label=True)
    _check_error(err, tmp_path / "p.nii.gz")
    assert load(tmp_path / "p.nii.gz").dtype == np.float32  # fine as an intensity image


def test_negative_label(tmp_path: Path) -> None:
    save(Image(np.full((3, 4, 5), -1, np.int16)), tmp_path / "n.nii.gz")
    with pytest.raises(InvalidImageError, match="negative") as err:
        load(tmp_path / "n.nii.gz", label=True)
    _check_error(err, tmp_path / "n.nii.gz")


def test_volume_on_a_3d_image(tmp_path: Path) -> None:
    save(Image(np.zeros((3, 4, 5), np.int16)), tmp_path / "v.nii.gz")
    with pytest.raises(ParameterError, match="not a 4D"):
        load(tmp_path / "v.nii.gz", volume=0)


# --------------------------------------------------------------- save errors
def test_save_errors(tmp_path: Path) -> None:
    vol = Image(np.zeros((3, 4, 5), np.float32))
    with pytest.raises(ImageWriteError, match="does not exist"):
        save(vol, tmp_path / "missing" / "x.nii.gz")
    with pytest.raises(ImageWriteError, match="cannot write"):
        save(vol, tmp_path / "x.xyz")
    with pytest.raises(ImageWriteError, match="DICOM"):
        save(vol, tmp_path / "x.dcm")
    with pytest.raises(ImageWriteError, match="only 2D"):
        save(vol, tmp_path / "x.png")
    with pytest.raises(ImageWriteError, match=r"float32.*\.mha"):
        save(Image(np.zeros((4, 5), np.float32)), tmp_path / "x.png")
    with pytest.raises(ImageWriteError, match="8-bit"):
        save(Image(np.zeros((4, 5), np.uint16)), tmp_path / "x.jpg")
    assert os.listdir(tmp_path) == []


_WRITE_PAST_A_SIZE_LIMIT = r"""
import resource, signal, sys
import numpy as np
import medaug
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)        # a write past the limit fails with EFBIG instead
resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
for name in sys.argv[1:]:
    try:
        medaug.save(medaug.Image(np.arange(20 * 30 * 40, dtype=np.int16).reshape(20, 30, 40)), name)
    except medaug.errors.ImageWriteError as exc:
        print(exc)
"""


def test_a_failed_write_prints_nothing_of_its_own_and_names_the_final_file(tmp_path):
    """niftilib ('** ERROR: NWAD: wrote only ...') and MetaIO printed on stderr; errors named the temporary file."""
    import subprocess
    import sys

    names = [str(tmp_path / f"out.{ext}") for ext in ("nii", "mha", "nrrd")]
    proc = subprocess.run([sys.executable, "-c", _WRITE_PAST_A_SIZE_LIMIT, *names], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.stderr == ""
    lines = proc.stdout.splitlines()
    assert len(lines) == 3
    for name, line in zip(names, lines):
        assert line.startswith(f"{name}: cannot be written: ") and ".tmp" not in line, line
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no temporary file left either


def _png(path: Path, rows: np.ndarray, colour: int, depth: int) -> Path:
    """A PNG written byte by byte (filter 0 on every row): ``rows`` is (y, x * samples) in the file's sample type."""
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    samples = 2 if colour == 4 else 1
    header = struct.pack(">IIBBBBB", rows.shape[1] // samples, rows.shape[0], depth, colour, 0, 0, 0)
    raw = b"".join(b"\x00" + row.astype(">u2" if depth == 16 else "u1").tobytes() for row in rows)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) +
                     chunk(b"IEND", b""))
    return path


def test_a_grey_alpha_png_is_read_as_grey(tmp_path: Path) -> None:
    grey = RNG.integers(0, 256, (7, 9)).astype(np.uint8)
    alpha = RNG.integers(0, 256, (7, 9)).astype(np.uint8)
    rows = np.stack([grey, alpha], -1).reshape(7, 18)
    img = load(_png(tmp_path / "la.png", rows, colour=4, depth=8))
    assert img.channels == 1 and img.spacing == (1.0, 1.0) and img.dtype == np.uint8
    np.testing.assert_array_equal(img.array, grey)
    plain = load(_png(tmp_path / "l.png", grey, colour=0, depth=8))  # the same grid as a grey PNG
    assert plain.grid.same_as(img.grid)


def test_a_16_bit_grey_alpha_png_is_named_not_called_corrupt(tmp_path: Path) -> None:
    rows = RNG.integers(0, 65535, (4, 10)).astype(np.uint16)
    with pytest.raises(ImageReadError, match="is a 16-bit grey \\+ alpha PNG, which medaug cannot read without losing"):
        load(_png(tmp_path / "la16.png", rows, colour=4, depth=16))
