"""Reading and writing images through SimpleITK.

:func:`load` reads NIfTI (``.nii``, ``.nii.gz``), MetaImage (``.mha``, ``.mhd``),
NRRD (``.nrrd``, ``.nhdr``), DICOM (one file, or a folder holding a series) and
2D PNG/JPEG/TIFF/BMP into an :class:`~medaug.data.image.Image`; :func:`save`
writes the same formats (except DICOM) atomically.

Conventions and decisions
-------------------------
* Voxel values keep the file's dtype (``int16`` CT stays ``int16``); a DICOM
  image whose rescaled values SimpleITK returns as ``int32`` is narrowed back to
  ``int16`` when every value fits.
* DICOM values are rescaled (RescaleSlope/RescaleIntercept), so CT is in HU.
* A single-frame DICOM file (or a one-file series) loads as a 2D ``(y, x)``
  image: spacing and origin are the first two entries of the 3D ones and the
  direction is the in-plane 2x2 block when that block is orthonormal (axial
  slices); otherwise the direction is the identity and a warning is issued.
  A multi-frame file loads as 3D.
* SimpleITK (niftilib) silently zero-fills a truncated NIfTI file and reads
  NaN/Inf voxels of a NIfTI file as 0, so NIfTI files are checked against their
  header (data size, gzip integrity, finite floats) before reading.
* Headers that claim more voxels than the available memory are refused before
  any allocation.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import secrets
import shutil
import struct
import warnings
import zlib
from os import PathLike
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import SimpleITK as sitk

from ..errors import ImageReadError, InvalidImageError, ParameterError
from .grid import Grid
from .image import Image

# ITK prints C++ warnings (with build paths) straight to stderr; medaug checks what matters itself
# (slice gaps, spacing, sizes) and reports it as one clear error or warning instead.
sitk.ProcessObject_SetGlobalWarningDisplay(False)

__all__ = ["load", "save", "read_header", "image_from_sitk", "image_to_sitk", "SUPPORTED_FORMATS"]

PathType = str | PathLike[str]

#: File name ending -> format name.  DICOM files may also have no extension.
SUPPORTED_FORMATS: dict[str, str] = {
    ".nii": "NIfTI",
    ".nii.gz": "NIfTI",
    ".mha": "MetaImage",
    ".mhd": "MetaImage",
    ".nrrd": "NRRD",
    ".nhdr": "NRRD",
    ".dcm": "DICOM",
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}
_DETACHED = {".mhd", ".nhdr"}  # header + separate data file
_EIGHT_BIT_ONLY = {"JPEG", "BMP"}
_SUPPORTED_TEXT = (
    "NIfTI (.nii, .nii.gz), MetaImage (.mha, .mhd), NRRD (.nrrd, .nhdr), DICOM (a .dcm file "
    "or a folder holding one series) and 2D PNG, JPEG, TIFF or BMP"
)


# ---------------------------------------------------------------- public API
def load(path: PathType, *, label: bool = False, volume: int | None = None) -> Image:
    """Read an image file (or a DICOM series folder) into an :class:`Image`.

    Parameters
    ----------
    path : str or PathLike
        A NIfTI, MetaImage, NRRD, DICOM, PNG, JPEG, TIFF or BMP file, or a folder
        holding a DICOM series.
    label : bool
        Read a label map: values must be non-negative integers; float files
        holding whole numbers are cast to the smallest of uint8/int16/int32.
    volume : int, optional
        For a 4D image (a time series), the index of the 3D volume to return.

    Returns
    -------
    Image
        2D ``(y, x)`` or 3D ``(z, y, x)`` image with the file's geometry; an
        intensity image keeps the file's dtype.

    Raises
    ------
    ImageReadError
        The path does not exist, the format is not supported, or the file is
        unreadable, corrupt or truncated.
    InvalidImageError
        The image has NaN/Inf voxels, is empty, complex, RGB, 4D without
        ``volume``, too large for memory, or a DICOM series misses a slice;
        or, with ``label=True``, holds non-integer or negative values.
    ParameterError
        ``volume`` is out of range, or given for an image that is not 4D.
    """
    p = Path(path)
    where = str(p)
    if not p.exists():
        raise ImageReadError("file not found; check the path and the current folder", path=where)
    if p.is_dir():
        itk, fmt = _read_dicom_folder(p), "DICOM"
    else:
        fmt = _format_of(p)
        if fmt == "NIfTI":
            _check_nifti(p)
        itk = _read_file(p, fmt)
    itk = _select_volume(itk, volume, where)
    itk = _to_scalar(itk, where)
    if fmt == "DICOM" and itk.GetDimension() == 3 and itk.GetSize()[2] == 1:
        itk = _collapse_slice(itk, where)
    image = image_from_sitk(itk, is_label=False, path=where)
    arr = image.array
    if fmt == "DICOM" and arr.dtype == np.int32 and _fits(arr, np.int16):
        image = image.with_data(arr.astype(np.int16))
    if arr.dtype.kind == "c":
        raise InvalidImageError(
            f"has complex voxel values ({arr.dtype}); medaug needs real values: save the magnitude "
            "(or real part) as a separate image",
            path=where,
        )
    try:
        image.check_finite()
    except InvalidImageError as err:
        err.path = where
        raise
    if label:
        image = Image(_as_label_array(image.array, where), grid=image.grid, is_label=True, path=where)
    return image


def save(image: Image, path: PathType, *, compress: bool = False) -> None:
    """Write ``image`` to ``path``; the format follows the extension.

    The file is written to a temporary name in the same folder and renamed, so
    a reader never sees a half-written file.  Geometry and dtype are kept
    (a ``bool`` array is written as ``uint8``, ``float16`` as ``float32``).

    Parameters
    ----------
    image : Image
        The image to write (NumPy or torch data).
    path : str or PathLike
        Target file; its folder must exist.  ``.nii.gz`` is always compressed.
    compress : bool
        Also compress MetaImage and NRRD data.

    Raises
    ------
    ImageReadError
        Unsupported extension, missing folder, a dtype or dimensionality the
        format cannot hold (e.g. float data as PNG), or a write failure.
    ParameterError
        ``image`` is not an :class:`Image`.
    """
    if not isinstance(image, Image):
        raise ParameterError(f"save() needs a medaug Image, got {type(image).__name__}", path=path)
    p = Path(path)
    where = str(p)
    ext = _extension(p)
    fmt = SUPPORTED_FORMATS.get(ext)
    if fmt is None or fmt == "DICOM":
        what = "writing DICOM is not supported" if fmt == "DICOM" else f"cannot write '{ext or p.name}' files"
        raise ImageReadError(
            f"{what}; use .nii.gz, .nii, .mha, .mhd, .nrrd, .nhdr, or for 2D images .png, .jpg, .tif, .bmp",
            path=where,
        )
    if not p.parent.is_dir():
        raise ImageReadError(f"the folder {p.parent} does not exist; create it first", path=where)
    _check_writable(image.ndim, image.array.dtype, fmt, where)
    itk = image_to_sitk(image)
    stem = p.name[: len(p.name) - len(ext)]
    token = f"tmp-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        if ext in _DETACHED:  # header + data file: write both in a temporary folder, move the header last
            tmp_dir = p.parent / f".{stem}.{token}"
            tmp_dir.mkdir()
            try:
                header = tmp_dir / p.name
                _write(itk, header, compress, where)
                for f in sorted(tmp_dir.iterdir(), key=lambda f: f == header):
                    os.replace(f, p.parent / f.name)
            finally:
                shutil.rmtree(tmp_dir, ignore_errors=True)
        else:
            tmp = p.parent / f".{stem}.{token}{ext}"
            try:
                _write(itk, tmp, compress, where)
                os.replace(tmp, p)
            finally:
                tmp.unlink(missing_ok=True)
    except OSError as err:
        reason = err.strerror or str(err)
        raise ImageReadError(f"cannot be written: {reason}; check the path and permissions", path=where) from err


def read_header(path: PathType) -> dict[str, Any]:
    """Read an image's header only (no voxel data).

    Returns
    -------
    dict
        ``format``, ``shape`` (array order, may be 4D), ``spacing``, ``origin``,
        ``direction`` (flat, row-major), ``dtype`` and ``components``; for a
        DICOM folder also ``files`` (slices of the series that would be read);
        its other entries come from the first file, so the z spacing and the
        dtype (before narrowing to int16) may differ from what :func:`load` returns.
    """
    p = Path(path)
    where = str(p)
    if not p.exists():
        raise ImageReadError("file not found; check the path and the current folder", path=where)
    if p.is_dir():
        files = _dicom_series_files(p)
        reader = _info_reader(Path(files[0]), "DICOM", where)
        fmt, extra = "DICOM", {"files": len(files)}
        shape = (len(files), *reversed(reader.GetSize()[:2]))
    else:
        fmt, extra = _format_of(p), {}
        reader = _info_reader(p, fmt, where)
        shape = tuple(reversed(reader.GetSize()))
    return {
        "format": fmt,
        "shape": shape,
        "spacing": tuple(reader.GetSpacing()),
        "origin": tuple(reader.GetOrigin()),
        "direction": tuple(reader.GetDirection()),
        "dtype": str(_itk_dtype(reader.GetPixelID())),
        "components": reader.GetNumberOfComponents(),
        **extra,
    }


def image_from_sitk(itk: sitk.Image, *, is_label: bool = False, path: str | None = None) -> Image:
    """Convert a scalar 2D/3D SimpleITK image to an :class:`Image` (a copy of the voxels)."""
    if itk.GetNumberOfComponentsPerPixel() != 1:
        raise InvalidImageError(
            f"has {itk.GetNumberOfComponentsPerPixel()} values per voxel; a scalar image is required",
            path=path,
        )
    if itk.GetDimension() not in (2, 3):
        raise InvalidImageError(
            f"is {itk.GetDimension()}D; medaug works on 2D or 3D images", path=path
        )
    arr = sitk.GetArrayFromImage(itk)
    if arr.size == 0:
        raise InvalidImageError(f"is empty (size {itk.GetSize()}); the file holds no voxels", path=path)
    try:
        grid = Grid(arr.shape, itk.GetSpacing(), itk.GetOrigin(), itk.GetDirection())
    except InvalidImageError as err:
        raise InvalidImageError(
            f"has invalid geometry in its header ({err}); fix the header or re-export the image", path=path
        ) from err
    return Image(arr, grid=grid, is_label=is_label, path=path)


def image_to_sitk(image: Image) -> sitk.Image:
    """Convert an :class:`Image` (NumPy or torch data) to a SimpleITK image with its geometry."""
    arr = np.ascontiguousarray(image.array)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    elif arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    itk = sitk.GetImageFromArray(arr, isVector=False)
    itk.SetSpacing(image.spacing)
    itk.SetOrigin(image.origin)
    itk.SetDirection(tuple(float(v) for v in np.asarray(image.direction).ravel()))
    return itk


# ------------------------------------------------------------ format helpers
def _extension(p: Path) -> str:
    name = p.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else p.suffix.lower()


def _is_dicom_file(p: Path) -> bool:
    try:
        with open(p, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def _format_of(p: Path) -> str:
    ext = _extension(p)
    fmt = SUPPORTED_FORMATS.get(ext)
    if fmt is not None:
        return fmt
    if _is_dicom_file(p) or ext == "":
        return "DICOM"  # DICOM files are often named without (or with UID-like) extensions
    raise ImageReadError(
        f"unsupported file type '{ext}'; medaug reads {_SUPPORTED_TEXT}: convert the file to one of these",
        path=str(p),
    )


def _itk_reason(err: BaseException) -> str:
    """The useful line(s) of an ITK exception message, without the C++ location."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if "ERROR:" in line:
            reason = line.split("ERROR:", 1)[1].strip()
            reason = re.sub(r"^\w+\(0x[0-9a-fA-F]+\):\s*", "", reason)
            if reason.endswith(":") and i + 1 < len(lines):  # NRRD: the detail is on the last line
                reason += " " + re.sub(r"^\[\w+\]\s*\w+:\s*", "", lines[-1])
            return reason[:300]
    return (lines[-1] if lines else type(err).__name__)[:300]


_ITK_DTYPES: dict[int, np.dtype] = {}
for _name, _dt in [
    ("UInt8", np.uint8), ("Int8", np.int8), ("UInt16", np.uint16), ("Int16", np.int16),
    ("UInt32", np.uint32), ("Int32", np.int32), ("UInt64", np.uint64), ("Int64", np.int64),
    ("Float32", np.float32), ("Float64", np.float64),
]:  # fmt: skip
    for _prefix in ("sitk", "sitkVector"):
        if hasattr(sitk, _prefix + _name):
            _ITK_DTYPES[getattr(sitk, _prefix + _name)] = np.dtype(_dt)
_ITK_DTYPES[sitk.sitkComplexFloat32] = np.dtype(np.complex64)
_ITK_DTYPES[sitk.sitkComplexFloat64] = np.dtype(np.complex128)


def _itk_dtype(pixel_id: int) -> np.dtype:
    return _ITK_DTYPES.get(pixel_id, np.dtype(np.float64))


def _fits(arr: np.ndarray, dtype: type) -> bool:
    info = np.iinfo(dtype)
    return bool(arr.min() >= info.min and arr.max() <= info.max)


# ------------------------------------------------------------ memory check
def _available_memory() -> int | None:
    """Bytes of memory available to a new allocation (MemAvailable), if known."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def _check_memory(nbytes: int, size: Any, where: str) -> None:
    available = _available_memory()
    if available is not None and nbytes > available:
        raise InvalidImageError(
            f"the header describes an image of {nbytes / 2**30:.3g} GiB (size {tuple(size)}), more than "
            f"the {available / 2**30:.3g} GiB of memory available; check that the file is not corrupt, "
            "or crop it / use a machine with more memory",
            path=where,
        )


# ------------------------------------------------------------ NIfTI checks
_NIFTI_FLOATS = {16: "f4", 64: "f8"}  # NIfTI datatype code -> float dtype
_CORRUPT_GZIP = (
    "truncated or corrupt gzip data ({}); the file was probably cut short while copying or downloading: "
    "copy it again"
)


class _NiftiHeader(NamedTuple):
    shape: list[int]
    bitpix: int
    offset: int
    float_dtype: np.dtype | None  # set for float32/float64 data


def _nifti_header(p: Path, opener: Any) -> _NiftiHeader | None:
    """Parse a NIfTI-1/2 header; None for a header without data in the same file."""
    where = str(p)
    try:
        with opener(p, "rb") as f:
            h = f.read(544)
    except gzip.BadGzipFile as err:
        raise ImageReadError(
            f"is not gzip-compressed although its name ends in .gz ({err}); rename it to .nii if it is "
            "uncompressed NIfTI, otherwise copy the file again",
            path=where,
        ) from err
    except (OSError, EOFError, zlib.error) as err:
        raise ImageReadError(_CORRUPT_GZIP.format(err), path=where) from err
    for e in "<>":
        if len(h) >= 348 and struct.unpack(e + "i", h[:4])[0] == 348:
            dims = list(struct.unpack(e + "8h", h[40:56]))
            datatype, bitpix = struct.unpack(e + "2h", h[70:74])
            offset = max(int(struct.unpack(e + "f", h[108:112])[0]), 352)
            magic = h[344:347]
            break
        if len(h) >= 540 and struct.unpack(e + "i", h[:4])[0] == 540:
            datatype, bitpix = struct.unpack(e + "2h", h[12:16])
            dims = list(struct.unpack(e + "8q", h[16:80]))
            offset = max(struct.unpack(e + "q", h[168:176])[0], 544)
            magic = h[4:7]
            break
    else:
        raise ImageReadError(
            "is not a valid NIfTI file (bad or truncated header); check that the file really is NIfTI "
            "and copy it again",
            path=where,
        )
    ndim = dims[0]
    if not 1 <= ndim <= 7:
        raise ImageReadError(f"has an invalid NIfTI header (dim[0] = {ndim}); re-export the image", path=where)
    shape = dims[1 : ndim + 1]
    if any(d <= 0 for d in shape):
        raise InvalidImageError(f"is empty: the header gives size {tuple(shape)}; re-export the image", path=where)
    if magic not in (b"n+1", b"n+2"):
        return None
    float_dtype = np.dtype(e + _NIFTI_FLOATS[datatype]) if datatype in _NIFTI_FLOATS else None
    return _NiftiHeader(shape, bitpix, offset, float_dtype)


def _scan_nifti(p: Path, opener: Any, hdr: _NiftiHeader, data_bytes: int) -> tuple[int, int]:
    """Stream the file once: (bytes available, count of non-finite float voxels)."""
    total, bad = 0, 0
    start, stop = hdr.offset, hdr.offset + data_bytes
    item = hdr.float_dtype.itemsize if hdr.float_dtype is not None else 1
    carry = b""
    with opener(p, "rb") as f:
        while chunk := f.read(1 << 22):
            lo, hi = total, total + len(chunk)
            total = hi
            if hdr.float_dtype is None or hi <= start or lo >= stop:
                continue
            part = carry + chunk[max(start - lo, 0) : min(stop, hi) - lo]
            usable = len(part) - len(part) % item
            values = np.frombuffer(part[:usable], dtype=hdr.float_dtype)
            bad += int(values.size - np.count_nonzero(np.isfinite(values)))
            carry = part[usable:]
    return total, bad


def _check_nifti(p: Path) -> None:
    """Refuse truncated, oversized or non-finite NIfTI files.

    SimpleITK (niftilib) silently zero-fills missing data and replaces NaN/Inf
    voxels by 0, so both are checked on the raw file before it is read.
    """
    where = str(p)
    opener = gzip.open if _extension(p) == ".nii.gz" else open
    hdr = _nifti_header(p, opener)
    if hdr is None:
        return
    data_bytes = math.ceil(math.prod(hdr.shape) * max(hdr.bitpix, 1) / 8)
    _check_memory(data_bytes, hdr.shape, where)
    if opener is open and hdr.float_dtype is None:
        actual, bad = p.stat().st_size, 0
    else:
        try:
            actual, bad = _scan_nifti(p, opener, hdr, data_bytes)
        except (OSError, EOFError, zlib.error) as err:
            raise ImageReadError(_CORRUPT_GZIP.format(err), path=where) from err
    expected = hdr.offset + data_bytes
    if actual < expected:
        raise ImageReadError(
            f"is truncated: the header describes {expected} bytes of image but the file holds only {actual} "
            f"({100 * actual / expected:.0f}%); copy or export the file again",
            path=where,
        )
    if bad:
        raise InvalidImageError(
            f"{bad} voxel(s) are NaN or infinite; clean the image before augmenting", path=where
        )


# ------------------------------------------------------------ reading
def _info_reader(p: Path, fmt: str, where: str) -> sitk.ImageFileReader:
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(p))
    if fmt == "DICOM":
        reader.SetImageIO("GDCMImageIO")
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        if fmt == "DICOM" and _extension(p) == "" and not _is_dicom_file(p):
            raise ImageReadError(
                f"is not in a format medaug recognises (not DICOM: {_itk_reason(err)}); medaug reads "
                f"{_SUPPORTED_TEXT}: give the file its proper extension or convert it",
                path=where,
            ) from err
        raise _unreadable(fmt, err, where) from err
    return reader


def _unreadable(fmt: str, err: RuntimeError, where: str) -> ImageReadError:
    return ImageReadError(
        f"cannot be read as {fmt}: {_itk_reason(err)}; the file is corrupt, truncated or not really {fmt}: "
        "check it in a viewer, or copy/export it again",
        path=where,
    )


def _read_file(p: Path, fmt: str) -> sitk.Image:
    where = str(p)
    reader = _info_reader(p, fmt, where)
    size = reader.GetSize()
    nbytes = math.prod(size) * reader.GetNumberOfComponents() * _itk_dtype(reader.GetPixelID()).itemsize
    _check_memory(nbytes, size, where)
    try:
        return reader.Execute()
    except RuntimeError as err:
        raise _unreadable(fmt, err, where) from err


def _dicom_series_files(folder: Path) -> list[str]:
    where = str(folder)
    try:
        ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(where)
    except RuntimeError as err:
        raise ImageReadError(f"cannot scan the folder for DICOM files: {_itk_reason(err)}", path=where) from err
    if not ids:
        raise ImageReadError(
            "is a folder without a DICOM series; pass an image file, or a folder holding the DICOM files "
            f"of one series (medaug reads {_SUPPORTED_TEXT})",
            path=where,
        )
    files = {uid: list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(where, uid)) for uid in ids}
    uid = max(ids, key=lambda u: len(files[u]))
    if len(ids) > 1:
        warnings.warn(
            f"{where}: the folder holds {len(ids)} DICOM series; reading the largest, SeriesInstanceUID "
            f"{uid} ({len(files[uid])} files). Put each series in its own folder to read another one.",
            stacklevel=3,
        )
    return files[uid]


def _floats(text: str) -> np.ndarray:
    return np.array([float(v) for v in text.strip().strip("\x00").split("\\")], dtype=float)


def _check_slice_positions(folder: Path, files: list[str]) -> None:
    """Raise when the slices of a sorted series leave a gap or are unevenly spaced."""
    where = str(folder)
    if len(files) < 3:
        return
    reader = sitk.ImageFileReader()
    reader.SetImageIO("GDCMImageIO")
    reader.LoadPrivateTagsOff()
    positions = []
    normal = None
    for name in files:
        reader.SetFileName(name)
        try:
            reader.ReadImageInformation()
            if normal is None:
                iop = _floats(reader.GetMetaData("0020|0037"))
                normal = np.cross(iop[:3], iop[3:6])
            positions.append(_floats(reader.GetMetaData("0020|0032"))[:3])
        except (RuntimeError, ValueError, IndexError):
            return  # no usable ImagePositionPatient / ImageOrientationPatient: nothing to check
    z = np.array(positions) @ normal
    steps = np.abs(np.diff(z))
    step = float(np.median(steps))
    if steps.min() < 1e-3 * max(step, 1.0):
        i = int(np.argmin(steps))
        raise InvalidImageError(
            f"two DICOM files of the series sit at the same slice position ({z[i]:.3f} mm): "
            f"{Path(files[i]).name} and {Path(files[i + 1]).name}; the folder may mix acquisitions, "
            "keep one file per slice",
            path=where,
        )
    worst = int(np.argmax(steps))
    if steps[worst] > 1.5 * step:
        missing = round(steps[worst] / step) - 1
        raise InvalidImageError(
            f"the DICOM series is missing {missing} slice(s): a gap of {steps[worst]:.3g} mm between slice "
            f"positions {z[worst]:.3f} and {z[worst + 1]:.3f} mm (between {Path(files[worst]).name} and "
            f"{Path(files[worst + 1]).name}) where the other slices are {step:.3g} mm apart; copy the "
            "complete series again",
            path=where,
        )
    if steps.max() - steps.min() > 0.1 * step + 1e-3:
        raise InvalidImageError(
            f"the DICOM slices are unevenly spaced ({steps.min():.3g} to {steps.max():.3g} mm apart); "
            "medaug needs a regular grid: resample the series to constant slice spacing first",
            path=where,
        )


def _read_dicom_folder(folder: Path) -> sitk.Image:
    where = str(folder)
    files = _dicom_series_files(folder)
    _check_slice_positions(folder, files)
    info = _info_reader(Path(files[0]), "DICOM", where)
    size = (*info.GetSize()[:2], len(files))
    itemsize = _itk_dtype(info.GetPixelID()).itemsize * info.GetNumberOfComponents()
    _check_memory(math.prod(size) * itemsize, size, where)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    try:
        return reader.Execute()
    except RuntimeError as err:
        raise ImageReadError(
            f"cannot read the DICOM series: {_itk_reason(err)}; a file of the series may be corrupt: copy the "
            "series again",
            path=where,
        ) from err


def _select_volume(itk: sitk.Image, volume: int | None, where: str) -> sitk.Image:
    dim = itk.GetDimension()
    if dim > 4:
        raise InvalidImageError(f"is {dim}D; medaug works on 2D or 3D images", path=where)
    if dim < 4:
        if volume is not None:
            raise ParameterError(
                f"volume={volume} was given but the image is {dim}D, not a 4D series; drop volume= (--volume)",
                path=where,
            )
        return itk
    size = list(itk.GetSize())
    n = size[3]
    if volume is None and n > 1:
        raise InvalidImageError(
            f"is 4D with {n} volumes of size {tuple(size[:3])}; pass volume=K (CLI: --volume K) "
            f"to pick one, K from 0 to {n - 1}",
            path=where,
        )
    k = 0 if volume is None else int(volume)
    if not 0 <= k < n:
        raise ParameterError(f"volume={volume} is out of range; the image has {n} volumes (0 to {n - 1})", path=where)
    return sitk.Extract(itk, [*size[:3], 0], [0, 0, 0, k], sitk.ExtractImageFilter.DIRECTIONCOLLAPSETOSUBMATRIX)


def _to_scalar(itk: sitk.Image, where: str) -> sitk.Image:
    """Turn grey RGB(A) into one channel; refuse colour and other vector images."""
    ncomp = itk.GetNumberOfComponentsPerPixel()
    if ncomp == 1:
        return itk
    if ncomp in (3, 4):
        rgb = sitk.GetArrayViewFromImage(itk)[..., :3]
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
            return sitk.VectorIndexSelectionCast(itk, 0)
        raise InvalidImageError(
            "is an RGB colour image where grey is required; convert it to greyscale first "
            "(e.g. with Pillow: Image.open(path).convert('L').save(new_path))",
            path=where,
        )
    raise InvalidImageError(
        f"has {ncomp} values per voxel (a vector image); medaug needs a scalar image: split the "
        "components into separate files",
        path=where,
    )


def _collapse_slice(itk: sitk.Image, where: str) -> sitk.Image:
    """A single DICOM slice as a 2D image (see the module notes)."""
    size = itk.GetSize()
    d3 = np.asarray(itk.GetDirection()).reshape(3, 3)
    sub = d3[:2, :2]
    orthonormal = np.allclose(sub @ sub.T, np.eye(2), atol=1e-4)
    if not orthonormal:
        warnings.warn(
            f"{where}: a non-axial single DICOM slice is read as a 2D image with identity direction; "
            "its orientation in the patient is lost",
            stacklevel=3,
        )
    out = sitk.Extract(itk, [size[0], size[1], 0], [0, 0, 0], sitk.ExtractImageFilter.DIRECTIONCOLLAPSETOIDENTITY)
    out.SetSpacing(itk.GetSpacing()[:2])
    out.SetOrigin(itk.GetOrigin()[:2])
    out.SetDirection(tuple(sub.ravel()) if orthonormal else (1.0, 0.0, 0.0, 1.0))
    return out


def _as_label_array(arr: np.ndarray, where: str) -> np.ndarray:
    """Check that ``arr`` holds class indices; cast float/bool to an integer type."""
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8)
    if arr.dtype.kind not in "uif":
        raise InvalidImageError(f"a label map must hold integers, got {arr.dtype}", path=where)
    if arr.dtype.kind == "f":
        frac = arr != np.round(arr)
        if frac.any():
            raise InvalidImageError(
                f"label map has non-integer values (e.g. {arr[frac].flat[0]:g}); a label map must hold class "
                "indices 0, 1, 2, ...: load it without label=True if it is an intensity image or a "
                "probability map, or round/threshold it first",
                path=where,
            )
    lo, hi = arr.min(), arr.max()
    if lo < 0:
        raise InvalidImageError(
            f"label map has negative values (min {lo:g}); labels must be class indices 0, 1, 2, ...: "
            "remap them before augmenting",
            path=where,
        )
    if arr.dtype.kind == "f":
        for dt in (np.uint8, np.int16, np.int32):
            if hi <= np.iinfo(dt).max:
                return arr.astype(dt)
        raise InvalidImageError(f"label map has values up to {hi:g}, too large for a label map", path=where)
    return arr


# ------------------------------------------------------------ writing
def _check_writable(ndim: int, dtype: np.dtype, fmt: str, where: str) -> None:
    """Refuse what a 2D picture format cannot hold (TIFF and the 3D formats take any dtype)."""
    if fmt in ("PNG", "JPEG", "BMP"):
        if ndim != 2:
            raise ImageReadError(
                f"{fmt} holds only 2D images but this image is {ndim}D; save it as .nii.gz, .mha or .nrrd",
                path=where,
            )
        allowed = (np.uint8,) if fmt in _EIGHT_BIT_ONLY else (np.uint8, np.uint16)
        if dtype not in [np.dtype(a) for a in allowed] and dtype != np.bool_:
            kinds = "8-bit" if fmt in _EIGHT_BIT_ONLY else "8- or 16-bit"
            raise ImageReadError(
                f"{fmt} stores only {kinds} unsigned integers but the image is {dtype}; save it as .mha, "
                ".nrrd or .nii.gz to keep the values, or rescale and cast it to "
                f"{' / '.join(np.dtype(a).name for a in allowed)} first",
                path=where,
            )


def _write(itk: sitk.Image, target: Path, compress: bool, where: str) -> None:
    writer = sitk.ImageFileWriter()
    writer.SetFileName(str(target))
    writer.SetUseCompression(compress or str(target).lower().endswith(".gz"))
    try:
        writer.Execute(itk)
    except RuntimeError as err:
        raise ImageReadError(f"cannot be written: {_itk_reason(err)}", path=where) from err
