"""A corpus of bad inputs, written at test time (no binary is committed).

:func:`write_corpus` writes every case into a folder and returns one
:class:`CorpusCase` per case: its files, the Python entry point and the CLI
command lines that apply, and what medaug must do (the exception type and a
fragment of its message, or a warning, or accept the input).

Run as a script to write the corpus and print the cases::

    python tests/corpus/make_corpus.py /tmp/corpus
"""

from __future__ import annotations

import gzip
import os
import struct
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from medaug.errors import GeometryError, ImageReadError, InvalidImageError, MedaugError, ParameterError

__all__ = ["OUT", "SECRET", "SERIES_UID", "CorpusCase", "write_corpus"]

#: Placeholder in CLI argument lists for a fresh output folder.
OUT = "{out}"
SERIES_UID = "1.2.826.0.1.3680043.2.1125.9.42"
_RNG_SEED = 7

# NIfTI-1 header offsets (little endian)
_DIM, _DATATYPE, _PIXDIM, _VOX_OFFSET, _SCL_SLOPE, _QFORM_CODE, _SROW_X = 40, 70, 76, 108, 112, 252, 280


@dataclass(frozen=True)
class CorpusCase:
    """One bad (or borderline) input and the behaviour medaug owes it.

    Attributes
    ----------
    name : str
        Unique case name (also the file stem where it makes sense).
    group : str
        ``nifti``, ``other-formats``, ``dicom``, ``pair``, ``config``, ``path`` or ``boundary``
        (inputs naming files they do not own, non-regular files, unsafe case ids).
    paths : dict
        Role (``image``, ``label``, ``config``, ``dataset``) -> path as ``str``
        (a non-UTF-8 name holds surrogate escapes, as ``os.fsdecode`` gives).
    api : str
        The Python entry point: ``load``, ``load_label``, ``load_case``,
        ``read_cases`` or ``pipeline_from_config``.
    cli : tuple of tuple of str
        ``medaug`` argument lists that apply; :data:`OUT` stands for a fresh
        output folder.
    error : type or None
        The :mod:`medaug.errors` class raised; None when the input is accepted.
    fragment : str
        Part of the error message, or of the warning when ``warning`` is set.
    names : tuple of str
        Paths the message must contain (the offending file).
    warning : bool
        The input is accepted with a warning whose text holds ``fragment``.
    unreadable : bool
        The case is a file without read permission: as root it must be run
        by a process that has dropped its privileges.
    """

    name: str
    group: str
    paths: dict[str, str]
    api: str
    cli: tuple[tuple[str, ...], ...]
    error: type[MedaugError] | None
    fragment: str
    names: tuple[str, ...] = ()
    warning: bool = False
    unreadable: bool = False
    exit_code: int = field(default=2)

    def __post_init__(self) -> None:
        if self.error is None:
            object.__setattr__(self, "exit_code", 0)


# ---------------------------------------------------------------- writers
def _ct(shape: tuple[int, ...] = (6, 10, 12), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-1000, 1500, shape).astype(np.int16)


def _write_sitk(arr: np.ndarray, path: Path, spacing=(1.0, 1.0, 2.0), origin=(0.0, 0.0, 0.0), vector=False) -> Path:
    img = sitk.GetImageFromArray(arr, isVector=vector)
    nd = img.GetDimension()
    img.SetSpacing(tuple(spacing)[:nd])
    img.SetOrigin(tuple(origin)[:nd])
    sitk.WriteImage(img, str(path))
    return path


def _patched(src: Path, dst: Path, *patches: tuple[int, str, tuple]) -> Path:
    raw = bytearray(src.read_bytes())
    for offset, fmt, values in patches:
        raw[offset : offset + struct.calcsize(fmt)] = struct.pack(fmt, *values)
    dst.write_bytes(bytes(raw))
    return dst


def _nifti1(arr: np.ndarray, path: Path, datatype: int, bitpix: int, pixdim=(1.0, 1.0, 2.0)) -> Path:
    """A raw NIfTI-1 file for dtypes SimpleITK cannot write (complex, RGB).

    ``arr`` is in (z, y, x) order, with a trailing channel axis for RGB (``bitpix`` 24).
    """
    shape_xyz = (arr.shape[:-1] if bitpix == 24 else arr.shape)[::-1]
    hdr = bytearray(352)
    struct.pack_into("<i", hdr, 0, 348)
    dims = [len(shape_xyz), *shape_xyz] + [1] * (7 - len(shape_xyz))
    struct.pack_into("<8h", hdr, _DIM, *dims)
    struct.pack_into("<2h", hdr, _DATATYPE, datatype, bitpix)
    struct.pack_into("<8f", hdr, _PIXDIM, 1.0, *pixdim, 1.0, 1.0, 1.0, 1.0)
    struct.pack_into("<f", hdr, _VOX_OFFSET, 352.0)
    struct.pack_into("<2h", hdr, _QFORM_CODE, 1, 0)
    hdr[344:348] = b"n+1\x00"
    path.write_bytes(bytes(hdr) + np.ascontiguousarray(arr).tobytes())
    return path


def _dicom_slice(arr2d: np.ndarray, path: Path, z: float, k: int, series_uid: str = SERIES_UID,
                 spacing=(0.8, 0.8, 2.0)) -> Path:
    s = sitk.GetImageFromArray(arr2d[None])
    s.SetSpacing(spacing)
    s.SetOrigin((0.0, 0.0, z))
    tags = {
        "0008|0060": "CT", "0020|000d": SERIES_UID + ".1", "0020|000e": series_uid,
        "0008|0018": f"{series_uid}.{k}", "0020|0013": str(k + 1), "0020|0032": f"0\\0\\{z}",
        "0020|0037": "1\\0\\0\\0\\1\\0", "0028|1052": "-1024", "0028|1053": "1",
    }
    for tag, value in tags.items():
        s.SetMetaData(tag, value)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    writer.SetImageIO("GDCMImageIO")
    writer.SetFileName(str(path))
    writer.Execute(s)
    return path


def _dicom_series(folder: Path, n: int = 6, positions: list[float] | None = None,
                  series_uid: str = SERIES_UID, prefix: str = "slice") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    hu = _ct((n, 8, 8), seed=3)
    zs = positions if positions is not None else [2.0 * k for k in range(n)]
    return [_dicom_slice(hu[k], folder / f"{prefix}{k:02d}.dcm", z, k, series_uid) for k, z in enumerate(zs)]


def _dicom_without_pixels(path: Path) -> Path:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # CT image storage, but no PixelData
    meta.MediaStorageSOPInstanceUID = generate_uid(prefix="1.2.826.0.1.3680043.2.1125.")
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.Rows, ds.Columns = "CT", 8, 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.save_as(path, enforce_file_format=True)
    return path


def _dataset(root: Path, image: Path, label: Path) -> Path:
    """A dataset folder ``root/images`` + ``root/labels`` holding one case, copies of ``image`` and ``label``."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "images" / "case01.nii.gz").write_bytes(image.read_bytes())
    (root / "labels" / "case01.nii.gz").write_bytes(label.read_bytes())
    return root


# ---------------------------------------------------------------- the corpus
class _Corpus:
    """Collects cases while writing their files under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cases: list[CorpusCase] = []
        self.good = _write_sitk(_ct(), root / "good.nii.gz")
        lab = np.zeros((6, 10, 12), np.uint8)
        lab[2:4, 3:7, 4:9] = 1
        self.good_label = _write_sitk(lab, root / "good_label.nii.gz")
        self.good_config = root / "good.yaml"
        self.good_config.write_text("- RandomFlip: {axes: [LR], p: 0.5}\n", encoding="utf-8")
        self.good_dataset = self.dataset(root / "good_dataset")

    def dataset(self, folder: Path) -> Path:
        """A dataset folder with one good case."""
        return _dataset(folder, self.good, self.good_label)

    def add(self, name: str, group: str, paths: dict[str, Path | str], api: str, cli: list[list[str]],
            error: type[MedaugError] | None, fragment: str, names: list[Path | str] | None = None, **kw) -> None:
        str_paths = {k: os.fsdecode(v) for k, v in paths.items()}
        if names is None:
            names = [next(iter(str_paths.values()))]
        self.cases.append(CorpusCase(
            name, group, str_paths, api, tuple(tuple(os.fsdecode(a) for a in argv) for argv in cli),
            error, fragment, tuple(os.fsdecode(n) for n in names), **kw,
        ))

    # -- helpers for the usual command lines
    def info(self, path: Path | str, *extra: str) -> list[str]:
        return ["info", *extra, os.fsdecode(path)]

    def augment(self, image: Path | str, *extra: str | Path) -> list[str]:
        return ["augment", os.fsdecode(image), *map(os.fsdecode, extra), "-n", "1", "-o", OUT]

    def expand(self, dataset: Path | str, *extra: str | Path) -> list[str]:
        return ["expand", os.fsdecode(dataset), OUT, *map(os.fsdecode, extra), "-n", "1", "--quiet"]


def _nifti_cases(c: _Corpus) -> None:
    d = c.root / "nifti"
    d.mkdir()
    plain = _write_sitk(_ct(), d / "plain.nii")
    raw = plain.read_bytes()

    def image_case(name: str, path: Path, error: type[MedaugError] | None, fragment: str, **kw) -> None:
        c.add(name, "nifti", {"image": path}, "load", [c.info(path)], error, fragment, **kw)

    (d / "truncated.nii").write_bytes(raw[: int(len(raw) * 0.7)])
    image_case("nifti_truncated", d / "truncated.nii", ImageReadError, "is truncated")
    gz = c.good.read_bytes()
    (d / "truncated.nii.gz").write_bytes(gz[: int(len(gz) * 0.6)])
    image_case("nifti_gz_truncated_stream", d / "truncated.nii.gz", ImageReadError, "truncated or corrupt gzip data")
    (d / "short_data.nii.gz").write_bytes(gzip.compress(raw[: len(raw) // 2]))
    image_case("nifti_gz_short_data", d / "short_data.nii.gz", ImageReadError, "is truncated")
    (d / "not_gzip.nii.gz").write_bytes(raw)
    image_case("nifti_gz_not_gzip", d / "not_gzip.nii.gz", ImageReadError, "is not gzip-compressed")
    (d / "garbage.nii").write_bytes(np.random.default_rng(_RNG_SEED).integers(0, 256, 600, np.uint8).tobytes())
    image_case("nifti_not_nifti", d / "garbage.nii", ImageReadError, "is not a valid NIfTI file")

    _patched(plain, d / "vox_offset_past_end.nii", (_VOX_OFFSET, "<f", (1e6,)))
    image_case("nifti_vox_offset_past_end", d / "vox_offset_past_end.nii", ImageReadError, "vox_offset 1000000")
    _patched(plain, d / "vox_offset_into_data.nii", (_VOX_OFFSET, "<f", (400.0,)))
    image_case("nifti_vox_offset_too_far", d / "vox_offset_into_data.nii", ImageReadError, "vox_offset 400")

    huge1 = _write_sitk(np.zeros((2, 2, 2), np.float64), d / "huge_nifti1.nii")
    _patched(huge1, huge1, (_DIM, "<8h", (3, 32767, 32767, 32767, 1, 1, 1, 1)))
    image_case("nifti_huge_header", huge1, InvalidImageError, "memory available")
    huge2 = bytearray(544)  # NIfTI-2: 10^6 x 10^6 x 10^6 voxels
    struct.pack_into("<i", huge2, 0, 540)
    huge2[4:12] = b"n+2\x00\r\n\x1a\n"
    struct.pack_into("<2h", huge2, 12, 4, 16)
    struct.pack_into("<8q", huge2, 16, 3, 10**6, 10**6, 10**6, 1, 1, 1, 1)
    struct.pack_into("<8d", huge2, 104, 1, 1, 1, 1, 1, 1, 1, 1)
    struct.pack_into("<q", huge2, 168, 544)
    (d / "huge_nifti2.nii").write_bytes(bytes(huge2))
    image_case("nifti2_huge_header_1e18_voxels", d / "huge_nifti2.nii", InvalidImageError, "memory available")

    _patched(plain, d / "zero_dim.nii", (_DIM, "<8h", (3, 12, 0, 6, 1, 1, 1, 1)))
    image_case("nifti_zero_size_dimension", d / "zero_dim.nii", InvalidImageError, "is empty")

    nan = np.zeros((4, 5, 6), np.float32)
    nan[1, 2, 3] = np.nan
    _write_sitk(nan, d / "nan.nii.gz")
    image_case("nifti_nan_voxels", d / "nan.nii.gz", InvalidImageError, "1 voxel(s) are NaN or infinite")
    inf = np.zeros((4, 5, 6), np.float64)
    inf[0, 0, :2] = [np.inf, -np.inf]
    _write_sitk(inf, d / "inf.nii")
    image_case("nifti_inf_voxels", d / "inf.nii", InvalidImageError, "2 voxel(s) are NaN or infinite")

    for name, value in (("negative", -1.0), ("zero", 0.0)):
        path = _patched(plain, d / f"{name}_pixdim.nii", (_PIXDIM + 4, "<f", (value,)))
        image_case(f"nifti_{name}_spacing", path, InvalidImageError, "voxel size (pixdim")

    sheared = _patched(plain, d / "sheared.nii", (_QFORM_CODE, "<2h", (0, 1)),
                       (_SROW_X, "<12f", (-1, 0.5, 0, 0, 0, -1, 0, 0, 0, 0, 2, 0)))
    image_case("nifti_non_orthonormal_direction", sheared, InvalidImageError, "not orthonormal")
    inf_sform = _patched(plain, d / "inf_sform.nii", (_SROW_X + 8, "<f", (float("inf"),)))  # ITK hangs on this
    image_case("nifti_non_finite_sform", inf_sform, InvalidImageError, "non-finite or absurd values in the sform")

    four = _write_sitk(np.zeros((3, 4, 5, 6), np.int16), d / "four_d.nii.gz", spacing=(1, 1, 1, 1), origin=(0,) * 4)
    image_case("nifti_4d_read_as_channels", four, None, "")
    c.add("nifti_4d_as_label_map", "nifti", {"label": four}, "load_label", [c.augment(c.good, "--label", four, "--config", c.good_config)],
          InvalidImageError, "this image has 3 channels")
    five = _patched(plain, d / "five_d.nii", (_DIM, "<8h", (5, 12, 10, 3, 1, 2, 1, 1)))
    image_case("nifti_5d", five, InvalidImageError, "is 5D")

    rgb = np.zeros((4, 5, 6, 3), np.uint8)
    rgb[..., 0] = 200
    _nifti1(rgb, d / "rgb.nii", datatype=128, bitpix=24)
    image_case("nifti_rgb", d / "rgb.nii", InvalidImageError, "is an RGB colour image; read it as three channels")
    _nifti1(np.full((4, 5, 6), 1 + 2j, np.complex64), d / "complex.nii", datatype=32, bitpix=64)
    image_case("nifti_complex", d / "complex.nii", InvalidImageError, "complex voxel values")

    nifti2 = bytearray(544)
    struct.pack_into("<i", nifti2, 0, 540)
    nifti2[4:12] = b"n+2\x00\r\n\x1a\n"
    struct.pack_into("<2h", nifti2, 12, 4, 16)
    struct.pack_into("<8q", nifti2, 16, 3, 2, 2, 2, 1, 1, 1, 1)
    struct.pack_into("<8d", nifti2, 104, 1, 1, 1, 1, 1, 1, 1, 1)
    struct.pack_into("<q", nifti2, 168, 544)
    (d / "small_nifti2.nii").write_bytes(bytes(nifti2) + bytes(16))
    image_case("nifti2_unsupported", d / "small_nifti2.nii", ImageReadError, "NIfTI-2")

    (d / "trailing.nii.gz").write_bytes(gzip.compress(raw + bytes(2 * 2**20)))
    image_case("nifti_gz_trailing_data", d / "trailing.nii.gz", ImageReadError, "more than 1 MiB of data after the")
    _patched(plain, d / "nan_scl_inter.nii", (_SCL_SLOPE, "<2f", (2.0, float("nan"))))
    image_case("nifti_nan_scl_inter", d / "nan_scl_inter.nii", InvalidImageError, "non-finite scl_inter (nan)")


def _other_format_cases(c: _Corpus) -> None:
    d = c.root / "other"
    d.mkdir()

    def image_case(name: str, path: Path, error: type[MedaugError] | None, fragment: str) -> None:
        c.add(name, "other-formats", {"image": path}, "load", [c.info(path)], error, fragment)

    (d / "huge.mha").write_text("ObjectType = Image\nNDims = 3\nDimSize = 1000000 1000000 1000000\n"
                                "ElementType = MET_SHORT\nElementDataFile = LOCAL\n", encoding="ascii")
    image_case("mha_huge_header_1e18_voxels", d / "huge.mha", InvalidImageError, "memory available")
    with open(d / "sheared.mha", "wb") as f:
        f.write(b"ObjectType = Image\nNDims = 3\nDimSize = 2 2 2\nTransformMatrix = 1 0.5 0 0 1 0 0 0 1\n"
                b"ElementType = MET_UCHAR\nElementDataFile = LOCAL\n" + bytes(8))
    image_case("mha_non_orthonormal_direction", d / "sheared.mha", InvalidImageError, "not orthonormal")
    for name, entry, why in (  # ITK read inf as 0 ("zero-valued spacing"), -10 as 2**32-10, -2 as 2
            ("mha_inf_spacing", "ElementSpacing = 1 inf 2", "a value is not finite"),
            ("mha_negative_dimsize", "DimSize = 12 -10 6", "a size is negative"),
            ("mha_negative_spacing", "ElementSpacing = 1 -1 2", "a spacing is negative: ITK images have positive")):
        header = {"DimSize": "DimSize = 12 10 6", "ElementSpacing": "ElementSpacing = 1 1 2"}
        header[entry.split(" = ")[0]] = entry
        (d / f"{name}.mha").write_bytes(f"ObjectType = Image\nNDims = 3\n{header['DimSize']}\n{header['ElementSpacing']}\n"
                                        "ElementType = MET_UCHAR\nElementDataFile = LOCAL\n".encode("ascii") + bytes(720))
        image_case(name, d / f"{name}.mha", InvalidImageError,
                   f"has an invalid {entry.split(' = ')[0]} in its MetaImage header ({entry}): {why}")
    rgb = np.random.default_rng(_RNG_SEED).integers(0, 255, (12, 10, 3)).astype(np.uint8)
    _write_sitk(rgb, d / "colour.png", vector=True)
    image_case("png_rgb", d / "colour.png", InvalidImageError, "is an RGB colour image; read it as three channels")

    volume = _ct((6, 10, 12))
    full = _write_sitk(volume, d / "full.mha").read_bytes()
    (d / "cut.mha").write_bytes(full[:-100])
    image_case("mha_truncated", d / "cut.mha", ImageReadError, "is truncated: its header describes 1440 bytes of voxel")
    d.joinpath("detached").mkdir()
    _write_sitk(volume, d / "detached" / "cut.mhd")
    raw = d / "detached" / "cut.raw"
    raw.write_bytes(raw.read_bytes()[:1000])
    image_case("mhd_truncated_data_file", d / "detached" / "cut.mhd", ImageReadError,
               "but its data file 'cut.raw' holds only 1000 (69%)")
    img = sitk.GetImageFromArray(volume)
    sitk.WriteImage(img, str(d / "packed.mha"), True)  # compressed
    packed = (d / "packed.mha").read_bytes()
    (d / "packed_cut.mha").write_bytes(packed[:-50])
    image_case("mha_compressed_truncated", d / "packed_cut.mha", ImageReadError, "bytes of compressed voxel data")


def _dicom_cases(c: _Corpus) -> None:
    d = c.root / "dicom"

    def folder_case(name: str, folder: Path, error: type[MedaugError] | None, fragment: str, **kw) -> None:
        c.add(name, "dicom", {"image": folder}, "load", [c.info(folder)], error, fragment, **kw)

    files = _dicom_series(d / "missing_slice")
    files[3].unlink()
    folder_case("dicom_missing_slice", d / "missing_slice", InvalidImageError, "missing 1 slice")
    _dicom_series(d / "mixed", n=4)
    _dicom_series(d / "mixed", n=3, series_uid=SERIES_UID + ".77", prefix="other")
    folder_case("dicom_mixed_series", d / "mixed", None, f"2 DICOM series; reading the largest, SeriesInstanceUID "
                f"{SERIES_UID} (4 files)", warning=True)
    _dicom_series(d / "uneven", n=6, positions=[0.0, 2.0, 4.0, 6.0, 9.0, 11.0])
    folder_case("dicom_uneven_spacing", d / "uneven", InvalidImageError, "unevenly spaced")
    _dicom_series(d / "duplicate", n=5, positions=[0.0, 2.0, 2.0, 4.0, 6.0])
    folder_case("dicom_duplicate_position", d / "duplicate", InvalidImageError, "same slice position")

    d.joinpath("single").mkdir()
    text = d / "single" / "report.dcm"
    text.write_text("Patient report\nThis is not a DICOM file.\n" * 20, encoding="utf-8")
    c.add("dicom_not_dicom", "dicom", {"image": text}, "load", [c.info(text)], ImageReadError, "is not a DICOM file")
    nopix = _dicom_without_pixels(d / "single" / "no_pixels.dcm")
    c.add("dicom_no_pixel_data", "dicom", {"image": nopix}, "load", [c.info(nopix)], ImageReadError, "no pixel data")
    (cut_src,) = _dicom_series(d / "cut_tmp", n=1)
    raw = cut_src.read_bytes()
    cut = d / "single" / "cut.dcm"
    cut.write_bytes(raw[: len(raw) - 40])  # GDCM would zero-fill the last 20 pixels
    c.add("dicom_truncated_file", "dicom", {"image": cut}, "load", [c.info(cut)], ImageReadError,
          "holds 88 bytes of pixel data but its header describes 8 rows x 8 columns")
    files = _dicom_series(d / "cut_series", n=5)
    raw = files[2].read_bytes()
    files[2].write_bytes(raw[: len(raw) - 64])
    folder_case("dicom_series_with_a_cut_slice", d / "cut_series", ImageReadError,
                "holds 64 bytes of pixel data but its header describes 8 rows x 8 columns", names=[files[2]])


def _pair_cases(c: _Corpus) -> None:
    d = c.root / "pairs"
    d.mkdir()
    img = c.good

    def pair_case(name: str, label: Path, error: type[MedaugError] | None, fragment: str, names: list[Path]) -> None:
        c.add(name, "pair", {"image": img, "label": label}, "load_case",
              [c.augment(img, "--label", label, "--preset", "ct-light")], error, fragment, names=names)

    lab = np.zeros((6, 10, 12), np.uint8)
    lab[2:4, 3:7, 4:9] = 1
    pair_case("pair_size_differs", _write_sitk(lab[:, :, :10], d / "small_label.nii.gz"), GeometryError,
              "size differs", [img, d / "small_label.nii.gz"])
    pair_case("pair_spacing_differs", _write_sitk(lab, d / "spacing_label.nii.gz", spacing=(1.0, 1.0, 2.5)),
              GeometryError, "spacing differs", [img, d / "spacing_label.nii.gz"])
    pair_case("pair_origin_differs", _write_sitk(lab, d / "origin_label.nii.gz", origin=(0.0, 5.0, 0.0)),
              GeometryError, "origin differs", [img, d / "origin_label.nii.gz"])
    frac = lab.astype(np.float32) * 0.5
    pair_case("label_non_integer", _write_sitk(frac, d / "prob_label.nii.gz"), InvalidImageError,
              "non-integer values (e.g. 0.5)", [d / "prob_label.nii.gz"])
    neg = lab.astype(np.int16) - 1
    pair_case("label_negative", _write_sitk(neg, d / "negative_label.nii.gz"), InvalidImageError,
              "negative values (min -1)", [d / "negative_label.nii.gz"])
    pair_case("label_all_background", _write_sitk(np.zeros_like(lab), d / "empty_label.nii.gz"), None, "", [])
    zero = _patched(_write_sitk(lab, d / "tmp.nii"), d / "zero_voxels_label.nii",
                    (_DIM, "<8h", (3, 0, 10, 6, 1, 1, 1, 1)))
    (d / "tmp.nii").unlink()
    pair_case("label_zero_voxels", zero, InvalidImageError, "is empty", [zero])
    c.add("label_non_integer_info", "pair", {"label": d / "prob_label.nii.gz"}, "load_label",
          [c.info(d / "prob_label.nii.gz", "--label")], InvalidImageError, "non-integer values")


def _config_cases(c: _Corpus) -> None:
    d = c.root / "configs"
    d.mkdir()

    def config_case(name: str, text: str | bytes, error: type[MedaugError], fragment: str, suffix: str = ".yaml") -> None:
        path = d / f"{name}{suffix}"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
        c.add(name, "config", {"config": path}, "pipeline_from_config",
              [c.augment(c.good, "--config", path), c.expand(c.good_dataset, "--config", path)], error, fragment)

    config_case("config_unknown_transform", "- RandomAfine: {rotation: 10}\n", ParameterError,
                "unknown transform 'RandomAfine' (did you mean 'RandomAffine'?)")
    config_case("config_misspelled_parameter", "- RandomAffine: {rotaton: 10}\n", ParameterError,
                "unknown parameter 'rotaton' (did you mean 'rotation'?)")
    config_case("config_range_min_above_max", "- RandomAffine: {scale: [1.2, 0.8]}\n", ParameterError,
                "'scale': range [1.2, 0.8] has min > max")
    config_case("config_negative_probability", "- RandomFlip: {axes: [LR], p: -0.5}\n", ParameterError,
                "'p' must be a probability in [0, 1], got -0.5")
    config_case("config_scalar_not_list", "just some text\n", ParameterError, "must be a list of")
    config_case("config_mapping_not_list", "RandomAffine: {rotation: 10}\n", ParameterError,
                "must be a list of {TransformName: {params}} items")
    config_case("config_json_object_not_list", '{"RandomAffine": {"rotation": 10}}', ParameterError,
                "must be a list of", suffix=".json")
    config_case("config_invalid_yaml", "- RandomAffine: {rotation: [10\n", ParameterError, "not valid YAML: expected ',' or ']'")
    config_case("config_not_utf8", b"- RandomAffine: {rotation: 10}  # \xff\xfe\n", ParameterError, "not UTF-8")
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"] + [
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]" for i in range(8)
    ]
    config_case("config_alias_bomb_small", "\n".join(levels) + "\n", ParameterError, "anchors are not allowed")
    big = "- a: &a [" + ", ".join(["lol"] * 20) + "]\n" + "".join(
        f"- b{i}: [*a, *a, *a, *a, *a, *a, *a, *a]\n" for i in range(10 * 2**20 // 38)
    )
    config_case("config_yaml_bomb_10mb", big, ParameterError, "above the 1048576-byte limit")
    # values that passed validation and crashed at run time (issue 16 item 7): refused when built now
    config_case("config_nan_noise_std", "- RandomNoise: {std: .nan}\n", ParameterError,
                "'std' must be a finite number, got nan")
    config_case("config_inf_elastic_displacement", "- RandomElastic: {max_displacement: .inf}\n", ParameterError,
                "'max_displacement' must be a finite number, got inf")
    config_case("config_inf_lowres_factor", "- RandomLowResolution: {factor: [2, .inf]}\n", ParameterError,
                "'factor[1]' must be a finite number, got inf")
    config_case("config_cutout_holes_unbounded", "- RandomCutout: {num_holes: 100000000}\n", ParameterError,
                "'num_holes' must lie in [0, 1000]")
    config_case("config_elastic_control_points_unbounded", "- RandomElastic: {control_points: 100000}\n",
                ParameterError, "'control_points' must lie in [4, 64]")
    config_case("config_integer_2_pow_63", "- RandomMotion: {num_transforms: 9223372036854775808}\n", ParameterError,
                "'num_transforms' must lie in [1, 32]")
    config_case("config_oneof_nan_weights", "- OneOf: {transforms: [RandomGamma, RandomNoise], weights: [.nan, 1]}\n",
                ParameterError, "'weights[0]' must be a finite number, got nan")
    config_case("config_singular_affine_matrix",
                "- AffineMatrix: {matrix: [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}\n",
                ParameterError, "'matrix' is singular")
    config_case("config_resample_1e308", "- Resample: {spacing: 1.0e+308}\n", ParameterError,
                "'spacing' must lie in (1e-06, 10000] mm, got 1e+308")
    nested = "{transforms: [RandomGamma]}"
    for _ in range(20):
        nested = f"{{transforms: [{{Compose: {nested}}}]}}"
    config_case("config_groups_nested_too_deep", f"- Compose: {nested}\n", ParameterError, "nest more than 16 deep")
    config_case("config_yaml_nested_too_deep", "- RandomAffine: {rotation: " + "[" * 5000 + "]" * 5000 + "}\n",
                ParameterError, "nests deeper than 100 levels")
    config_case("config_json_nested_too_deep", "[" * 100000 + "]" * 100000, ParameterError,
                "nests deeper than 100 levels", suffix=".json")
    # accepted, and runs (the CLI augments the good image with it)
    config_case("config_negative_zero_everywhere",
                "- RandomBlur: {std: -0.0}\n- RandomNoise: {std: [-0.0, -0.0]}\n- RandomCutout: {size_mm: -0.0}\n",
                None, "")
    # accepted, refused when applied: the output grid would not fit in memory (named before allocating)
    fine = d / "config_resample_too_fine.yaml"
    fine.write_text("- Resample: {spacing: 1.0e-4}\n", encoding="utf-8")
    c.add("config_resample_too_fine", "config", {"config": fine, "image": c.good}, "augment_config",
          [c.augment(c.good, "--config", fine)], ParameterError, "would need", names=[])


def _path_cases(c: _Corpus, chmod: Callable[[Path, int], None]) -> None:
    d = c.root / "paths"
    d.mkdir()
    folder = d / "just_a_folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("not an image\n", encoding="utf-8")
    c.add("path_directory_not_a_series", "path", {"image": folder}, "load", [c.info(folder)], ImageReadError,
          "is a folder without a DICOM series")
    c.add("path_config_is_directory", "path", {"config": folder}, "pipeline_from_config",
          [c.augment(c.good, "--config", folder)], ParameterError, "is a directory")
    c.add("path_missing", "path", {"image": d / "nope.nii.gz"}, "load", [c.info(d / "nope.nii.gz")],
          ImageReadError, "file not found")
    (d / "scan.xyz").write_bytes(b"hello")
    c.add("path_unsupported_extension", "path", {"image": d / "scan.xyz"}, "load", [c.info(d / "scan.xyz")],
          ImageReadError, "unsupported file type '.xyz'")

    locked_dir = d / "locked"
    locked_dir.mkdir()
    locked = locked_dir / "unreadable.nii.gz"
    locked.write_bytes(c.good.read_bytes())
    chmod(locked, 0)
    c.add("path_unreadable", "path", {"image": locked}, "load", [c.info(locked)], ImageReadError,
          "permission denied", unreadable=True)

    os.symlink("loop_b.nii.gz", d / "loop_a.nii.gz")
    os.symlink("loop_a.nii.gz", d / "loop_b.nii.gz")
    c.add("path_symlink_loop", "path", {"image": d / "loop_a.nii.gz"}, "load", [c.info(d / "loop_a.nii.gz")],
          ImageReadError, "symbolic link loop")
    os.symlink("gone.nii.gz", d / "dangling.nii.gz")
    c.add("path_broken_symlink", "path", {"image": d / "dangling.nii.gz"}, "load", [c.info(d / "dangling.nii.gz")],
          ImageReadError, "broken symbolic link")

    loops = c.dataset(d / "loop_dataset")
    os.symlink("y.nii.gz", loops / "images" / "x.nii.gz")
    os.symlink("x.nii.gz", loops / "images" / "y.nii.gz")
    c.add("dataset_symlink_loop", "path", {"dataset": loops}, "read_cases",
          [c.expand(loops, "--preset", "ct-light")], ImageReadError, "symbolic link loop",
          names=[loops / "images" / "x.nii.gz"])
    cyc = c.dataset(d / "cycle_dataset")
    os.symlink("..", cyc / "images" / "up")  # a folder link back to an ancestor: endless when walked
    c.add("dataset_folder_link_cycle", "path", {"dataset": cyc}, "read_cases",
          [c.expand(cyc, "--preset", "ct-light")], ImageReadError, "symbolic link loop",
          names=[cyc / "images" / "up"])

    bad = os.path.join(os.fsencode(d), b"scan_\xe9t\xe9.nii.gz")  # Latin-1 'été'
    with open(bad, "wb") as fh:
        fh.write(c.good.read_bytes())
    c.add("path_non_utf8_name", "path", {"image": bad}, "load", [c.info(bad)], ImageReadError,
          "not valid UTF-8", names=[bad])
    ds = c.dataset(d / "latin1_dataset")
    bad_case = os.path.join(os.fsencode(ds / "images"), b"caf\xe9.nii.gz")
    with open(bad_case, "wb") as fh:
        fh.write(c.good.read_bytes())
    c.add("dataset_non_utf8_name", "path", {"dataset": ds}, "read_cases",
          [c.expand(ds, "--preset", "ct-light")], ImageReadError, "not valid UTF-8", names=[bad_case])
    series = d / "latin1_series"
    _dicom_series(series, n=4)
    os.rename(series / "slice02.dcm", os.path.join(os.fsencode(series), b"tranche_\xe92.dcm"))
    c.add("dicom_folder_non_utf8_name", "path", {"image": series}, "load", [c.info(series)], ImageReadError,
          "not valid UTF-8", names=[os.path.join(os.fsencode(series), b"tranche_\xe92.dcm")])


#: Bytes of a file that no input may read into an output (the corpus's stand-in for /etc/shadow).
SECRET = b"SECRET-medaug-corpus-" * 16


def _boundary_cases(c: _Corpus) -> None:
    """Inputs that name files they do not own, non-regular files, mixed TIFF pages, unsafe case ids."""
    d = c.root / "boundary"
    d.mkdir()
    secret = c.root / "secret.bin"  # outside every header's folder
    secret.write_bytes(SECRET)

    def image_case(name: str, path: Path, error: type[MedaugError] | None, fragment: str, **kw) -> None:
        c.add(name, "boundary", {"image": path}, "load", [c.info(path), c.augment(path, "--config", c.good_config)],
              error, fragment, **kw)

    def mhd(name: str, data_file: str) -> Path:
        folder = d / name
        folder.mkdir()
        path = folder / f"{name}.mhd"
        path.write_text(f"ObjectType = Image\nNDims = 2\nDimSize = 8 8\nElementType = MET_UCHAR\n"
                        f"ElementDataFile = {data_file}\n", encoding="ascii")
        return path

    outside = "outside the header's folder"
    image_case("mhd_data_file_absolute", mhd("mhd_abs", str(secret)), ImageReadError, outside)
    image_case("mhd_data_file_dotdot", mhd("mhd_dotdot", "../../secret.bin"), ImageReadError, outside)
    image_case("mhd_data_file_proc_environ", mhd("mhd_proc", "/proc/self/environ"), ImageReadError, outside)
    image_case("mhd_data_file_list_outside", mhd("mhd_list", "LIST\n../../secret.bin"), ImageReadError, outside)
    image_case("mhd_data_file_pattern_outside", mhd("mhd_pattern", "../../secret%d.bin 1 2 1"), ImageReadError,
               outside)
    linked = mhd("mhd_link", "data.raw")
    os.symlink(secret, linked.parent / "data.raw")  # a link beside the header that leads out of its folder
    image_case("mhd_data_file_symlink_outside", linked, ImageReadError, outside)
    fifo_data = mhd("mhd_fifo", "data.raw")
    os.mkfifo(fifo_data.parent / "data.raw")
    image_case("mhd_data_file_fifo", fifo_data, ImageReadError, "not a regular file (a FIFO)")
    mha = d / "external.mha"
    mha.write_text(f"ObjectType = Image\nNDims = 2\nDimSize = 8 8\nElementType = MET_UCHAR\n"
                   f"ElementDataFile = {secret}\n", encoding="ascii")
    image_case("mha_data_file_absolute", mha, ImageReadError, outside)
    for name, key in (("nhdr_data_file_outside", "data file"), ("nrrd_datafile_outside", "datafile")):
        folder = d / name
        folder.mkdir()
        path = folder / (name + (".nhdr" if name.startswith("nhdr") else ".nrrd"))
        path.write_text(f"NRRD0004\ntype: uint8\ndimension: 2\nsizes: 8 8\nencoding: raw\n{key}: ../../secret.bin\n\n",
                        encoding="ascii")
        image_case(name, path, ImageReadError, outside)
    inside = mhd("mhd_inside", "data.raw")
    (inside.parent / "data.raw").write_bytes(bytes(range(64)))
    image_case("mhd_data_file_inside", inside, None, "")

    os.mkfifo(d / "fifo.nii")
    image_case("image_is_fifo", d / "fifo.nii", ImageReadError, "is a FIFO")
    series = d / "series_with_fifo"
    _dicom_series(series, n=3)
    os.mkfifo(series / "pipe")
    c.add("dicom_folder_with_fifo", "boundary", {"image": series}, "load", [c.info(series)], ImageReadError,
          "is a FIFO", names=[series])

    from PIL import Image as PILImage

    page = PILImage.fromarray(np.full((10, 10), 7, np.uint8))
    page.save(d / "unequal.tif", save_all=True, append_images=[PILImage.fromarray(np.full((20, 30), 9, np.uint8))])
    image_case("tiff_pages_of_unequal_size", d / "unequal.tif", ImageReadError, "pages differ")
    page.save(d / "bitdepth.tif", save_all=True, append_images=[PILImage.fromarray(np.full((10, 10), 999, np.uint16))])
    image_case("tiff_pages_of_unequal_type", d / "bitdepth.tif", ImageReadError, "pages differ")
    page.save(d / "equal.tif", save_all=True, append_images=[PILImage.fromarray(np.full((10, 10), 9, np.uint8))])
    image_case("tiff_equal_pages_volume", d / "equal.tif", None, "")

    def csv_case(name: str, text: str | bytes, error: type[MedaugError] | None, fragment: str) -> None:
        folder = d / name
        folder.mkdir()
        (folder / "a.nii.gz").write_bytes(c.good.read_bytes())
        (folder / "a_seg.nii.gz").write_bytes(c.good_label.read_bytes())
        path = folder / "cases.csv"
        path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
        c.add(name, "boundary", {"dataset": path}, "read_cases", [c.expand(path, "--preset", "ct-light")], error,
              fragment)

    head = "image,label,case_id\n"
    for name, cid in (("csv_case_id_parent", "../../evil"), ("csv_case_id_absolute", "/abs/x"),
                      ("csv_case_id_subfolder", "a/b"), ("csv_case_id_dot_segments", "x/../x"),
                      ("csv_case_id_backslash", "a\\b")):
        csv_case(name, f"{head}a.nii.gz,a_seg.nii.gz,{cid}\n", ParameterError, "line 2: the case id")
    csv_case("csv_case_id_newline", f'{head}a.nii.gz,a_seg.nii.gz,"a\nb"\n', ParameterError, "line 2: the case id")
    csv_case("csv_case_id_control", f"{head}a.nii.gz,a_seg.nii.gz,a\x01b\n", ParameterError, "line 2: the case id")
    csv_case("csv_case_id_dotdot", f"{head}a.nii.gz,a_seg.nii.gz,..\n", ParameterError, "line 2: the case id")
    csv_case("csv_case_id_nul", f"{head}a.nii.gz,a_seg.nii.gz,a\x00b\n", ParameterError, "line 2: the case id")
    csv_case("csv_case_ids_collide_without_case",
             f"{head}a.nii.gz,a_seg.nii.gz,Case1\na.nii.gz,a_seg.nii.gz,case1\n", ParameterError,
             "line 3 and line 2 have the same case id")
    csv_case("csv_utf8_bom_crlf", b"\xef\xbb\xbf" + f"{head}a.nii.gz,a_seg.nii.gz,Case1\n".replace("\n", "\r\n").encode(),
             None, "")


def write_corpus(root: str | Path, *, chmod: Callable[[Path, int], None] = os.chmod) -> list[CorpusCase]:
    """Write every corpus case under ``root`` (created if needed); return the case descriptors.

    Parameters
    ----------
    root : str or Path
        An empty or missing folder.
    chmod : callable
        Used to take the read permission away from the unreadable-file case.

    Returns
    -------
    list of CorpusCase
        In a stable order, names unique.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    corpus = _Corpus(root)
    for part in (_nifti_cases, _other_format_cases, _dicom_cases, _pair_cases, _config_cases, _boundary_cases):
        part(corpus)
    _path_cases(corpus, chmod)
    names = [case.name for case in corpus.cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return corpus.cases


if __name__ == "__main__":  # pragma: no cover
    for case in write_corpus(sys.argv[1] if len(sys.argv) > 1 else "corpus"):
        outcome = f"warning '{case.fragment}'" if case.warning else (
            case.error.__name__ + f" '{case.fragment}'" if case.error else "accepted")
        print(f"{case.name:36s} {case.api:22s} {outcome}")
