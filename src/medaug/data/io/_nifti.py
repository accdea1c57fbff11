"""NIfTI checks on the raw file: what SimpleITK (niftilib) would silently get wrong."""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ...errors import ImageReadError, InvalidImageError
from ._formats import _extension
from ._native import _check_memory

_NIFTI_FLOATS = {16: "f4", 64: "f8"}  # NIfTI datatype code -> float dtype
#: Bytes accepted after the voxel data a NIfTI header describes (padding); more means the header is wrong.
_TRAILING_LIMIT = 1 << 20
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
    """Read the file up to its voxel data's end + :data:`_TRAILING_LIMIT` + 1 byte, never further.

    Returns (bytes available up to there, count of non-finite float voxels).  A
    small file can decompress into gigabytes: reading only what the header
    describes keeps the check's time proportional to the declared size.
    """
    total, bad = 0, 0
    start, stop = hdr.offset, hdr.offset + data_bytes
    limit = stop + _TRAILING_LIMIT + 1
    item = hdr.float_dtype.itemsize if hdr.float_dtype is not None else 1
    carry = b""
    with opener(p, "rb") as f:
        while total < limit and (chunk := f.read(min(1 << 22, limit - total))):
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
    if actual > expected + _TRAILING_LIMIT:
        raise ImageReadError(
            f"holds more than {_TRAILING_LIMIT // 2**20} MiB of data after the {expected} bytes its header describes "
            f"(header and voxels){' once decompressed' if opener is not open else ''}: the header's size or type is "
            "wrong, or data were appended; re-export the image",
            path=where,
        )
    if bad:
        raise InvalidImageError(
            f"{bad} voxel(s) are NaN or infinite; clean the image before augmenting", path=where
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
