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
* GDCM likewise zero-fills the missing pixels of a cut (uncompressed) DICOM
  file, so its pixel data is checked against Rows x Columns x frames x samples
  x BitsAllocated first.
* Headers that claim more voxels than the available memory (the smallest of
  MemAvailable, the container's cgroup limit and ``ulimit -v``) are refused
  before any allocation.
* Paths that are not valid UTF-8 are refused (the C++ readers abort the whole
  process on them), as are symbolic link loops; a file without read permission
  gets a "permission denied" error.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import logging
import math
import os
import re
import secrets
import shutil
import struct
import sys
import tempfile
import threading
import warnings
import zlib
from collections.abc import Iterator
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
    _check_input_path(p)
    with _native_stderr_to_log():  # ITK's helpers (VNL) may also print on a degenerate geometry
        itk, fmt = _read_any(p, volume, where)
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


def _read_any(p: Path, volume: int | None, where: str) -> tuple[sitk.Image, str]:
    """The file or DICOM folder as one scalar 2D/3D SimpleITK image, and its format name."""
    if p.is_dir():
        itk, fmt = _read_dicom_folder(p), "DICOM"
    else:
        fmt = _format_of(p)
        if fmt == "NIfTI":
            _check_nifti(p)
        elif fmt == "DICOM":
            _check_dicom_file(p)
        itk = _read_file(p, fmt)
    itk = _select_volume(itk, volume, where)
    itk = _to_scalar(itk, where)
    if fmt == "DICOM" and itk.GetDimension() == 3 and itk.GetSize()[2] == 1:
        itk = _collapse_slice(itk, where)
    return itk, fmt


def save(image: Image, path: PathType, *, compress: bool = False, header: dict[str, str] | None = None) -> None:
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
    header : dict, optional
        Extra header entries (SimpleITK metadata names); used only for the
        identifiers kept by ``--keep-identifiers`` (:mod:`medaug.data.identifiers`).

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
    check_utf8_name(p)
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
    for key, value in (header or {}).items():
        itk.SetMetaData(key, value)
    write_itk(itk, p, compress=compress)


def write_itk(itk: sitk.Image, path: PathType, *, compress: bool = False) -> None:
    """Write a SimpleITK image atomically (temporary name in the same folder, then rename).

    The one place medaug writes image files; :func:`save` and the displacement
    fields of :mod:`medaug.registration` go through it.

    Raises
    ------
    ImageReadError
        When the file cannot be written (the message names it and the reason).
    """
    p = Path(path)
    where = str(p)
    ext = _extension(p)
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
    _check_input_path(p)
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


# ------------------------------------------------------------ path checks
def check_utf8_name(path: PathType) -> None:
    """Refuse a path that is not valid UTF-8 (the C++ readers abort the process on such names).

    Raises
    ------
    ImageReadError
        Naming the path, with its raw bytes.
    """
    text = os.fsdecode(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ImageReadError(
            f"the name is not valid UTF-8 ({os.fsencode(os.path.basename(text))!r}), which the image readers cannot "
            "open; rename it with a UTF-8 name (e.g. convmv -f latin1 -t utf-8)",
            path=text,
        ) from None


def _check_input_path(p: Path) -> None:
    """Refuse, with a clear message, what cannot be read before any reader sees it.

    A non-UTF-8 name, a missing file, a broken or looping symbolic link, and a
    file or folder without read permission.
    """
    where = str(p)
    check_utf8_name(p)
    try:
        os.stat(p)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ImageReadError(
                "is a symbolic link loop (the link points, through other links, back to itself); replace it by a "
                "link to the real file",
                path=where,
            ) from None
        if p.is_symlink():
            raise ImageReadError(
                f"is a broken symbolic link to {os.readlink(p)}, which does not exist; fix or remove the link",
                path=where,
            ) from None
        if err.errno == errno.EACCES:
            raise ImageReadError(
                "cannot be reached: permission denied on a folder of its path; check the permissions", path=where
            ) from None
        raise ImageReadError("file not found; check the path and the current folder", path=where) from None
    try:
        if p.is_dir():
            os.listdir(p)
        else:
            with open(p, "rb"):
                pass
    except PermissionError:
        raise ImageReadError(
            "cannot be opened: permission denied; ask for read access (e.g. chmod u+r) or copy the file", path=where
        ) from None
    except OSError as err:
        raise ImageReadError(f"cannot be opened: {err.strerror or err}", path=where) from None


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
    """Bytes of memory available to a new allocation, if known.

    The smallest of the system's MemAvailable, the room left under a container
    (cgroup) memory limit, and the room left under this process's address-space
    limit (``ulimit -v``, RLIMIT_AS).
    """
    known = [v for v in (_system_available(), _cgroup_available(), _rlimit_available()) if v is not None]
    return min(known) if known else None


def _system_available() -> int | None:
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


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None  # missing, or "max"


def _cgroup_available() -> int | None:
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),  # v1
    ):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None and limit < 2**60:
            return max(limit - usage, 0)
    return None


def _rlimit_available() -> int | None:
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (ImportError, OSError, ValueError):
        return None
    used = _vm_size()
    if soft == resource.RLIM_INFINITY or used is None:
        return None
    return max(soft - used, 0)


#: Address space GDCM may take beyond the image itself (headers, per-file buffers) while reading DICOM.
_HEADER_ROOM = 256 * 2**20


def _vm_size() -> int | None:
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize:"))
    except (OSError, ValueError, StopIteration):
        return None


_NATIVE_STDERR = {"depth": 0, "saved": None, "file": None}
_NATIVE_STDERR_LOCK = threading.Lock()
_log = logging.getLogger("medaug.io")


@contextlib.contextmanager
def _native_stderr_to_log() -> Iterator[None]:
    """Send what C/C++ code writes to file descriptor 2 meanwhile to the ``medaug.io`` debug log.

    niftilib, libpng, GDCM and VNL print their own complaints about a broken
    file straight to stderr; medaug reports the problem itself, in one line.
    Nested and concurrent uses share one redirection (reference counted).
    """
    with _NATIVE_STDERR_LOCK:
        if _NATIVE_STDERR["depth"] == 0:
            try:
                sys.stderr.flush()
                tmp = tempfile.TemporaryFile()  # noqa: SIM115 - closed when the last user leaves
                saved = os.dup(2)
                os.dup2(tmp.fileno(), 2)
                _NATIVE_STDERR.update(saved=saved, file=tmp)
            except (OSError, ValueError, AttributeError):
                _NATIVE_STDERR.update(saved=None, file=None)
        _NATIVE_STDERR["depth"] += 1
    try:
        yield
    finally:
        with _NATIVE_STDERR_LOCK:
            _NATIVE_STDERR["depth"] -= 1
            saved, tmp = _NATIVE_STDERR["saved"], _NATIVE_STDERR["file"]
            if _NATIVE_STDERR["depth"] == 0 and saved is not None and tmp is not None:
                os.dup2(saved, 2)
                os.close(saved)
                tmp.seek(0)
                text = tmp.read().decode("utf-8", "replace").strip()
                tmp.close()
                _NATIVE_STDERR.update(saved=None, file=None)
                if text:
                    _log.debug("native reader output: %s", text)


@contextlib.contextmanager
def _native_read(room: int | None) -> Iterator[None]:
    """Around every SimpleITK/GDCM read: native stderr to the log, and (for ``room``) the allocation cap."""
    with _native_stderr_to_log(), _allocation_cap(room):
        yield


@contextlib.contextmanager
def _allocation_cap(room: int | None) -> Iterator[None]:
    """Cap the address space at its current size + ``room`` bytes while a C++ reader runs (Linux).

    GDCM allocates whatever a corrupt DICOM length field claims (up to 4 GiB per
    element) and does not free it when the read then fails: under the cap the
    allocation fails instead, GDCM reports an unreadable file, and nothing is
    lost.  The limit is only ever lowered, and restored afterwards; it applies
    to the whole process for the duration of the read.  ``room=None``: no cap.
    """
    limits = None
    if room is not None and os.environ.get("MEDAUG_NO_ALLOCATION_CAP") is None:
        try:
            import resource

            used = _vm_size()
            soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            cap = None if used is None else used + int(room)
            if cap is not None and (soft == resource.RLIM_INFINITY or cap < soft):
                if hard != resource.RLIM_INFINITY:
                    cap = min(cap, hard)
                resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
                limits = (resource, soft, hard)
        except (ImportError, OSError, ValueError):
            limits = None
    try:
        yield
    finally:
        if limits is not None:
            resource_mod, soft, hard = limits
            resource_mod.setrlimit(resource_mod.RLIMIT_AS, (soft, hard))


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
    pixdim: tuple[float, ...] = ()  # voxel sizes of the spatial axes (pixdim[1:4], at most ndim of them)
    version: int = 1  # NIfTI-1 or NIfTI-2
    extended: bool = False  # header extensions follow the header (vox_offset beyond the header is then normal)
    transforms: tuple[tuple[str, int, tuple[float, ...]], ...] = ()  # (name, code, values) of qform and sform


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
            pixdim = struct.unpack(e + "8f", h[76:108])
            offset = max(_as_offset(struct.unpack(e + "f", h[108:112])[0]), 352)
            magic, version, extended = h[344:347], 1, h[348:349] not in (b"", b"\x00")
            qcode, scode = struct.unpack(e + "2h", h[252:256])
            quatern, srow = struct.unpack(e + "6f", h[256:280]), struct.unpack(e + "12f", h[280:328])
            break
        if len(h) >= 540 and struct.unpack(e + "i", h[:4])[0] == 540:
            datatype, bitpix = struct.unpack(e + "2h", h[12:16])
            dims = list(struct.unpack(e + "8q", h[16:80]))
            pixdim = struct.unpack(e + "8d", h[104:168])
            offset = max(struct.unpack(e + "q", h[168:176])[0], 544)
            magic, version, extended = h[4:7], 2, h[540:541] not in (b"", b"\x00")
            qcode, scode = struct.unpack(e + "2i", h[344:352])
            quatern, srow = struct.unpack(e + "6d", h[352:400]), struct.unpack(e + "12d", h[400:496])
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
    transforms = (("qform (quatern_b/c/d, qoffset_x/y/z, pixdim[0])", qcode, (*quatern, pixdim[0])),
                  ("sform (srow_x/y/z)", scode, srow))
    return _NiftiHeader(shape, bitpix, offset, float_dtype, tuple(pixdim[1 : 1 + min(ndim, 3)]), version, extended,
                        transforms)


def _as_offset(value: float) -> int:
    """A NIfTI-1 ``vox_offset`` (stored as a float) as a byte count; garbage (NaN, inf, huge) as 0."""
    return int(value) if math.isfinite(value) and 0 <= value < 2**62 else 0


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
    if not all(math.isfinite(v) and v > 0 for v in hdr.pixdim):
        raise InvalidImageError(
            f"has an invalid voxel size (pixdim) in its NIfTI header: {tuple(round(v, 6) for v in hdr.pixdim)}; "
            "voxel sizes must be positive and finite: fix the header (e.g. nibabel: img.header.set_zooms(...)) "
            "or re-export the image",
            path=where,
        )
    for name, code, values in hdr.transforms:
        if code > 0 and not all(math.isfinite(v) and abs(v) < 1e15 for v in values):
            raise InvalidImageError(  # ITK's reader loops forever on a non-finite sform: refused before it runs
                f"has non-finite or absurd values in the {name} of its NIfTI header: "
                f"{tuple(float(f'{v:.6g}') for v in values)}; fix the header or re-export the image",
                path=where,
            )
    if opener is open and hdr.float_dtype is None:
        actual, bad = p.stat().st_size, 0
    else:
        try:
            actual, bad = _scan_nifti(p, opener, hdr, data_bytes)
        except (OSError, EOFError, zlib.error) as err:
            raise ImageReadError(_CORRUPT_GZIP.format(err), path=where) from err
    expected = hdr.offset + data_bytes
    if actual < expected:
        start = 544 if hdr.version == 2 else 352
        if hdr.offset > start and not hdr.extended and actual >= start + data_bytes:
            raise ImageReadError(
                f"has a wrong vox_offset {hdr.offset} in its NIfTI header: the voxels would end at byte {expected} but "
                f"the file holds {actual} bytes (the voxel data fits after the header at byte {start}); fix the "
                "header's vox_offset or re-export the image",
                path=where,
            )
        what = f" (vox_offset {hdr.offset} + {data_bytes} bytes of voxels)" if hdr.offset > start else ""
        raise ImageReadError(
            f"is truncated: the header describes {expected} bytes of image{what} but the file holds only {actual} "
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
        with _native_read(_HEADER_ROOM if fmt == "DICOM" else None):
            reader.ReadImageInformation()
    except RuntimeError as err:
        if fmt == "DICOM" and _extension(p) == "" and not _is_dicom_file(p):
            raise ImageReadError(
                f"is not in a format medaug recognises (not DICOM: {_itk_reason(err)}); medaug reads "
                f"{_SUPPORTED_TEXT}: give the file its proper extension or convert it",
                path=where,
            ) from err
        raise _unreadable(fmt, err, where, p) from err
    return reader


def _unreadable(fmt: str, err: RuntimeError, where: str, p: Path | None = None) -> ImageReadError | InvalidImageError:
    """The error for a file SimpleITK refused, as specific as the file allows."""
    reason = _itk_reason(err)
    if "orthonormal" in reason.lower():
        return InvalidImageError(
            "has a direction that is not orthonormal (a sheared or skewed sform/qform or direction matrix) in its "
            "header; medaug needs orthonormal direction cosines: resample the image onto an orthonormal grid, or "
            "fix the header",
            path=where,
        )
    if fmt == "NIfTI" and p is not None and _nifti_version(p) == 2:
        return ImageReadError(
            "is a NIfTI-2 file, which medaug's reader (SimpleITK) cannot read; convert it to NIfTI-1, e.g. "
            "nibabel.save(nibabel.Nifti1Image.from_image(nibabel.load(path)), 'image.nii.gz')",
            path=where,
        )
    if fmt == "DICOM" and p is not None and p.is_file():
        if not _is_dicom_file(p):
            return ImageReadError(
                "is not a DICOM file (no 'DICM' marker at byte 128, and GDCM cannot parse it); pass a DICOM image "
                f"file or a folder holding a series (medaug reads {_SUPPORTED_TEXT})",
                path=where,
            )
        sop_class = _dicom_without_pixels(p)
        if sop_class is not None:
            return ImageReadError(
                f"is a DICOM file with no pixel data ({sop_class}): a report, structured report or presentation "
                "state rather than an image; pass an image file, or the folder of the image series",
                path=where,
            )
    return ImageReadError(
        f"cannot be read as {fmt}: {reason}; the file is corrupt, truncated or not really {fmt}: "
        "check it in a viewer, or copy/export it again",
        path=where,
    )


def _nifti_version(p: Path) -> int | None:
    """1 or 2 from the first four bytes (``sizeof_hdr``) of a NIfTI file, None when neither."""
    try:
        with (gzip.open if _extension(p) == ".nii.gz" else open)(p, "rb") as f:
            head = f.read(4)
    except (OSError, EOFError, zlib.error):
        return None
    for e in "<>":
        if len(head) == 4 and struct.unpack(e + "i", head)[0] in (348, 540):
            return 1 if struct.unpack(e + "i", head)[0] == 348 else 2
    return None


@contextlib.contextmanager
def _quiet_pydicom() -> Iterator[None]:
    """Silence pydicom's warnings and log records (a broken file's details add nothing to medaug's error)."""
    logger = logging.getLogger("pydicom")
    disabled, logger.disabled = logger.disabled, True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.disabled = disabled


def _dicom_dataset(p: Path) -> Any | None:
    """The file parsed by pydicom with every long value deferred (not read); None if pydicom cannot parse it."""
    try:
        import pydicom

        with _quiet_pydicom(), open(p, "rb") as f:
            return pydicom.dcmread(f, defer_size=256, force=True)
    except Exception:  # noqa: BLE001 - an unparsable header is GDCM's to report
        return None


def _dicom_without_pixels(p: Path) -> str | None:
    """The SOP class of a DICOM file that holds no pixel data; None when it has some (or cannot be parsed)."""
    ds = _dicom_dataset(p)
    if ds is None or any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        return None
    try:
        with _quiet_pydicom():
            uid = ds.get("SOPClassUID")
            name = getattr(uid, "name", "") if uid is not None else ""
    except Exception:  # noqa: BLE001
        uid, name = None, ""
    return f"SOP class {name or uid or 'unknown'}"


_UNCOMPRESSED_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
_UNDEFINED_LENGTH = 0xFFFFFFFF
_IMPLICIT_LE = "1.2.840.10008.1.2"  # the default when a file has no meta header


def _overlong_element(ds: Any, size: int) -> str | None:
    """The first top-level element whose declared length runs past the end of the file, as text."""
    for part in (getattr(ds, "file_meta", None), ds):
        if part is None:
            continue
        for tag in list(part.keys()):
            try:
                with _quiet_pydicom():
                    raw = part.get_item(tag, keep_deferred=True)  # the raw element: no value conversion
            except Exception:  # noqa: BLE001, S112 - a value pydicom cannot convert: not a length problem
                continue
            length, tell = getattr(raw, "length", None), getattr(raw, "value_tell", None)
            if not isinstance(length, int) or not isinstance(tell, int) or length == _UNDEFINED_LENGTH:
                continue
            if tell + length > size:
                return f"element {tag} declares {length} bytes but only {max(size - tell, 0)} remain in the file"
    return None


def _pixel_layout(ds: Any, size: int) -> tuple[int, int, str] | None:
    """(pixel bytes present, bytes the header needs, layout text) of uncompressed pixel data, else None."""
    try:
        with _quiet_pydicom():
            meta = getattr(ds, "file_meta", None)
            syntax = str(meta.get("TransferSyntaxUID", _IMPLICIT_LE)) if meta is not None else _IMPLICIT_LE
            if syntax not in _UNCOMPRESSED_SYNTAXES or "PixelData" not in ds:
                return None
            elem = ds.get_item("PixelData", keep_deferred=True)
            declared, present = int(elem.length), size - int(elem.value_tell)
            rows, cols, bits = int(ds.Rows), int(ds.Columns), int(ds.BitsAllocated)
            frames = int(ds.get("NumberOfFrames") or 1)
            samples = int(ds.get("SamplesPerPixel") or 1)
    except Exception:  # noqa: BLE001 - missing or unparsable attributes are GDCM's to report
        return None
    if declared == _UNDEFINED_LENGTH or min(rows, cols, bits, frames, samples) <= 0:
        return None
    needed = math.ceil(rows * cols * frames * samples * bits / 8)
    layout = f"{rows} rows x {cols} columns x {frames} frame(s) x {samples} sample(s) x {bits} bits = {needed} bytes"
    return min(declared, present), needed, layout



def _bad_orientation(ds: Any) -> str | None:
    """Why ImageOrientationPatient is unusable (ITK would print SVD warnings on it), or None."""
    try:
        with _quiet_pydicom():
            if "ImageOrientationPatient" not in ds:
                return None
            iop = np.array([float(v) for v in ds.ImageOrientationPatient], dtype=float)
    except Exception:  # noqa: BLE001 - an unparsable value: GDCM ignores it and uses the identity
        return None
    if iop.size != 6 or not np.isfinite(iop).all():
        return f"{iop.size} values" if iop.size != 6 else "non-finite values"
    row, col = iop[:3], iop[3:]
    if not (abs(np.linalg.norm(row) - 1) < 1e-2 and abs(np.linalg.norm(col) - 1) < 1e-2 and abs(row @ col) < 1e-2):
        return f"{iop.round(4).tolist()} is not two orthogonal unit vectors"
    return None


def _check_dicom_file(p: Path) -> None:
    """Check a DICOM file with pydicom before GDCM reads it.

    GDCM allocates whatever an element's length field claims (a corrupt length
    can cost gigabytes that are never given back), zero-fills pixel data that is
    shorter than Rows x Columns x frames x samples x BitsAllocated, and ITK
    prints SVD warnings on stderr for a degenerate ImageOrientationPatient; all
    three are refused here with a clear message.  A file without the 'DICM'
    marker is left to GDCM (read under the allocation cap): pydicom would parse
    any bytes as elements.
    """
    where = str(p)
    ds = _dicom_dataset(p) if _is_dicom_file(p) else None
    if ds is None:
        return
    _check_dicom_sizes(p, ds)
    orientation = _bad_orientation(ds)
    if orientation:
        raise InvalidImageError(
            f"has an invalid ImageOrientationPatient (0020,0037): {orientation}; fix the header or re-export the "
            "image",
            path=where,
        )


def _read_file(p: Path, fmt: str) -> sitk.Image:
    where = str(p)
    reader = _info_reader(p, fmt, where)
    size = reader.GetSize()
    nbytes = math.prod(size) * reader.GetNumberOfComponents() * _itk_dtype(reader.GetPixelID()).itemsize
    _check_memory(nbytes, size, where)
    try:
        with _native_read(_HEADER_ROOM + 3 * nbytes if fmt == "DICOM" else None):
            return reader.Execute()
    except RuntimeError as err:
        raise _unreadable(fmt, err, where, p) from err


def _check_dicom_sizes(p: Path, ds: Any) -> None:
    """Refuse pixel data shorter than the header's layout, then any element longer than what the file holds."""
    size = p.stat().st_size
    layout = _pixel_layout(ds, size)
    if layout is not None and layout[0] < layout[1]:
        raise ImageReadError(
            f"is truncated or has a wrong header: it holds {layout[0]} bytes of pixel data but its header describes "
            f"{layout[2]}; copy or export the file again",
            path=str(p),
        )
    overlong = _overlong_element(ds, size)
    if overlong:
        raise ImageReadError(f"is truncated or corrupt: {overlong}; copy or export the file again", path=str(p))


def _precheck_folder(folder: Path) -> None:
    """Refuse a folder holding a cut or corrupt DICOM file (GDCM's scan would allocate, or silently skip, it)."""
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return
    for name in names:
        p = folder / name
        if name.startswith(".") or not p.is_file() or not _is_dicom_file(p):
            continue
        ds = _dicom_dataset(p)
        if ds is not None:
            _check_dicom_sizes(p, ds)


def _dicom_series_files(folder: Path) -> list[str]:
    where = str(folder)
    _precheck_folder(folder)
    try:
        with _native_read(_HEADER_ROOM):
            ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(where)
    except RuntimeError as err:
        raise ImageReadError(f"cannot scan the folder for DICOM files: {_itk_reason(err)}", path=where) from err
    if not ids:
        raise ImageReadError(
            "is a folder without a DICOM series; pass an image file, or a folder holding the DICOM files "
            f"of one series (medaug reads {_SUPPORTED_TEXT})",
            path=where,
        )
    with _native_read(_HEADER_ROOM):
        files = {uid: list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(where, uid)) for uid in ids}
    uid = max(ids, key=lambda u: len(files[u]))
    for name in files[uid]:
        check_utf8_name(name)
    if len(ids) > 1:
        warnings.warn(
            f"{where}: the folder holds {len(ids)} DICOM series; reading the largest, SeriesInstanceUID "
            f"{uid} ({len(files[uid])} files). Put each series in its own folder to read another one.",
            stacklevel=3,
        )
    return files[uid]


def _floats(text: str) -> np.ndarray:
    return np.array([float(v) for v in text.strip().strip("\x00").split("\\")], dtype=float)


def _outsiders(folder: Path, files: list[str]) -> str:
    """A hint naming the files of ``folder`` that are not in the series read (a cut slice is one of them)."""
    inside = {Path(f).name for f in files}
    try:
        others = sorted(n for n in os.listdir(folder) if n not in inside and not n.startswith(".") and (folder / n).is_file())
    except OSError:
        return ""
    if not others:
        return ""
    return (f"; {len(others)} other file(s) of the folder are not in the series (e.g. {others[0]}): a cut or corrupt "
            "file may be the missing slice")


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
            with _native_read(_HEADER_ROOM):
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
            f"{Path(files[worst + 1]).name}) where the other slices are {step:.3g} mm apart{_outsiders(folder, files)}; "
            "copy the complete series again",
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
    for name in files:
        _check_dicom_file(Path(name))
    info = _info_reader(Path(files[0]), "DICOM", where)
    size = (*info.GetSize()[:2], len(files))
    itemsize = _itk_dtype(info.GetPixelID()).itemsize * info.GetNumberOfComponents()
    _check_memory(math.prod(size) * itemsize, size, where)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    try:
        with _native_read(_HEADER_ROOM + 3 * math.prod(size) * itemsize):
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
        full = _disk_full(target, itk, str(err))
        reason = f"{full.strerror}; free some space" if full else _itk_reason(err)
        raise ImageReadError(f"cannot be written: {reason}", path=where) from (full or err)
    short = _nifti_incomplete(target)
    if short:  # niftilib reports a short write (a full disk) only on stderr, and returns as if all went well
        full = _disk_full(target, itk, "")
        reason = f"{full.strerror}; free some space" if full else f"the written file is incomplete ({short})"
        raise ImageReadError(f"cannot be written: {reason}", path=where) from (full or OSError(errno.EIO, short))


def _disk_full(target: Path, itk: sitk.Image, message: str) -> OSError | None:
    """An ``OSError(ENOSPC or EDQUOT)`` when a failed write was (most likely) a full disk, else None.

    ITK's writers drop the ``errno``: the message is searched for the system's
    text, and the free space of the target's file system (the partial file still
    on it) is compared with the image's uncompressed size.
    """
    low = message.lower()
    for code in (errno.ENOSPC, errno.EDQUOT):
        if os.strerror(code).lower() in low:
            return OSError(code, os.strerror(code), str(target))
    needed = itk.GetNumberOfPixels() * itk.GetNumberOfComponentsPerPixel() * itk.GetSizeOfPixelComponent()
    try:
        free = shutil.disk_usage(target.parent).free
    except OSError:
        return None
    if free < needed:
        text = f"{os.strerror(errno.ENOSPC)} ({free} bytes free, about {needed} needed)"
        return OSError(errno.ENOSPC, text, str(target))
    return None


def _nifti_incomplete(target: Path) -> str | None:
    """Why a NIfTI file just written is not whole (a short write), or None when it is.

    ``.nii``: the file size against the header; ``.nii.gz``: the gzip trailer's
    length against the header (the file is decompressed only when they differ).
    """
    ext = _extension(target)
    if ext not in (".nii", ".nii.gz"):
        return None
    try:
        hdr = _nifti_header(target, gzip.open if ext == ".nii.gz" else open)
    except (ImageReadError, InvalidImageError):
        return "the header is cut short"
    if hdr is None:
        return None
    expected = hdr.offset + math.ceil(math.prod(hdr.shape) * max(hdr.bitpix, 1) / 8)
    try:
        if ext == ".nii":
            actual = target.stat().st_size
        else:
            with open(target, "rb") as f:
                f.seek(-4, os.SEEK_END)
                if struct.unpack("<I", f.read(4))[0] == expected % 2**32:
                    return None
            actual = 0
            with gzip.open(target, "rb") as f:
                while chunk := f.read(1 << 22):
                    actual += len(chunk)
    except (OSError, EOFError, zlib.error) as err:
        return f"the compressed data is cut short: {err}"
    return None if actual >= expected else f"{actual} of {expected} bytes"
