"""NIfTI checks on the raw file: what SimpleITK (niftilib) would silently get wrong."""

from __future__ import annotations

import gzip
import math
import os
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import SimpleITK as sitk

from ...errors import ImageReadError, InvalidImageError
from ._formats import _extension
from ._native import _check_memory

#: NIfTI datatype code -> NumPy type of the scalar voxel types
_NIFTI_DTYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 64: "f8", 256: "i1", 512: "u2", 768: "u4", 1024: "i8",
                 1280: "u8"}
#: NIfTI datatype code -> bits per voxel, as niftilib sizes the voxels (from the datatype; ``bitpix`` is ignored).
_NIFTI_BITS = {1: 1, 2: 8, 4: 16, 8: 32, 16: 32, 32: 64, 64: 64, 128: 24, 256: 8, 512: 16, 768: 32, 1024: 64,
               1280: 64, 1536: 128, 1792: 128, 2048: 256, 2304: 32}
#: Bytes accepted after the voxel data a NIfTI header describes (padding); more means the header is wrong.
_TRAILING_LIMIT = 1 << 20
_CORRUPT_GZIP = (
    "truncated or corrupt gzip data ({}); the file was probably cut short while copying or downloading: "
    "copy it again"
)


class _NiftiHeader(NamedTuple):
    shape: list[int]
    bitpix: int  # bits per voxel, from the datatype when it is a known one (as niftilib), else the header's bitpix
    offset: int
    dtype: np.dtype | None  # the voxel type (with the file's byte order) when it is a scalar type
    pixdim: tuple[float, ...] = ()  # voxel sizes of the spatial axes (pixdim[1:4], at most ndim of them)
    version: int = 1  # NIfTI-1 or NIfTI-2
    extended: bool = False  # header extensions follow the header (vox_offset beyond the header is then normal)
    transforms: tuple[tuple[str, int, tuple[float, ...]], ...] = ()  # (name, code, values) of qform and sform
    scaling: tuple[float, float] = (1.0, 0.0)  # scl_slope, scl_inter
    time: tuple[float, int, float] = (0.0, 0, 0.0)  # pixdim[4], the time bits of xyzt_units, toffset

    @property
    def float_dtype(self) -> np.dtype | None:
        """The voxel type when it is float32/float64 (checked for NaN/Inf)."""
        return self.dtype if self.dtype is not None and self.dtype.kind == "f" else None


def _opener(p: Path) -> Any:
    """``gzip.open`` for ``.nii.gz``, else ``open``."""
    return gzip.open if _extension(p) == ".nii.gz" else open


def _nifti_header(p: Path) -> _NiftiHeader | None:
    """Parse a NIfTI-1/2 header (refused unless its magic says the voxels follow in the same file)."""
    where = str(p)
    try:
        with _opener(p)(p, "rb") as f:
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
            scaling = struct.unpack(e + "2f", h[112:120])
            magic, version, extended = h[344:347], 1, h[348:349] not in (b"", b"\x00")
            qcode, scode = struct.unpack(e + "2h", h[252:256])
            quatern, srow = struct.unpack(e + "6f", h[256:280]), struct.unpack(e + "12f", h[280:328])
            units, toffset = h[123], struct.unpack(e + "f", h[136:140])[0]
            break
        if len(h) >= 540 and struct.unpack(e + "i", h[:4])[0] == 540:
            datatype, bitpix = struct.unpack(e + "2h", h[12:16])
            dims = list(struct.unpack(e + "8q", h[16:80]))
            pixdim = struct.unpack(e + "8d", h[104:168])
            offset = max(struct.unpack(e + "q", h[168:176])[0], 544)
            scaling = struct.unpack(e + "2d", h[176:192])
            magic, version, extended = h[4:7], 2, h[540:541] not in (b"", b"\x00")
            qcode, scode = struct.unpack(e + "2i", h[344:352])
            quatern, srow = struct.unpack(e + "6d", h[352:400]), struct.unpack(e + "12d", h[400:496])
            units, toffset = struct.unpack(e + "i", h[500:504])[0], struct.unpack(e + "d", h[216:224])[0]
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
    if magic not in (b"n+1", b"n+2"):  # niftilib reads on without its checks and fills missing voxels with 0
        raise ImageReadError(
            f"has the magic {bytes(magic)!r} where a single-file NIfTI has 'n+{version}' (a header of a .hdr/.img pair, "
            "'ni1', or an ANALYZE 7.5 header), which medaug does not read as .nii; convert it to NIfTI, e.g. "
            "nibabel.save(nibabel.load(path), 'image.nii.gz')",
            path=where,
        )
    dtype = np.dtype(e + _NIFTI_DTYPES[datatype]) if datatype in _NIFTI_DTYPES else None
    transforms = (("qform (quatern_b/c/d, qoffset_x/y/z, pixdim[0])", qcode, (*quatern, pixdim[0])),
                  ("sform (srow_x/y/z)", scode, srow))
    # the voxels' size as niftilib takes it, from the datatype: an RGB24 image with bitpix 8 needs 24 bits a voxel
    # (sized by bitpix, a file holding a third of them passed the truncation check and read uninitialised memory)
    bitpix = _NIFTI_BITS.get(datatype, bitpix)
    return _NiftiHeader(shape, bitpix, offset, dtype, tuple(pixdim[1 : 1 + min(ndim, 3)]), version, extended,
                        transforms, scaling, (float(pixdim[4]), int(units) & _TIME_BITS, float(toffset)))


#: The time bits of ``xyzt_units`` and their names (NIfTI-1 standard; nibabel's names).
_TIME_BITS = 0x38
TIME_UNITS = {0: "unknown", 8: "sec", 16: "msec", 24: "usec", 32: "hz", 40: "ppm", 48: "rads"}
#: What ITK multiplies ``pixdim[4]`` and ``toffset`` by when it reads them (it writes seconds).
_ITK_TIME_SCALE = {"msec": 1e-3, "usec": 1e-6}


def time_metadata(hdr: _NiftiHeader) -> dict[str, Any]:
    """A 4D NIfTI's time axis as :attr:`~medaug.data.image.Image.metadata`: ``time_step``, ``time_units``, ``time_offset``."""
    step, code, offset = hdr.time
    return {"time_step": step, "time_units": TIME_UNITS.get(code, "unknown"), "time_offset": offset}


def time_axis(metadata: dict[str, Any]) -> tuple[float, int, float] | None:
    """``(pixdim[4], time code, toffset)`` to write from an image's metadata, or None when it holds no time axis."""
    if "time_step" not in metadata:
        return None
    codes = {name: code for code, name in TIME_UNITS.items()}
    return (float(metadata["time_step"]), codes.get(str(metadata.get("time_units", "unknown")), 0),
            float(metadata.get("time_offset", 0.0)))


def itk_time(step: float, code: int, offset: float) -> tuple[float, float]:
    """The (spacing, origin) of ITK's fourth axis that make its writer put ``step`` and ``offset`` back (in seconds).

    A step ITK cannot hold (0, negative, not finite: e.g. the 0 of many MRI
    series) becomes 1; :func:`patch_time` then writes the true header.
    """
    scale = _ITK_TIME_SCALE.get(TIME_UNITS.get(code, "unknown"), 1.0)
    spacing = step * scale
    origin = offset * scale if math.isfinite(offset) else 0.0
    return (spacing if math.isfinite(spacing) and spacing > 0 else 1.0), origin


def needs_time_patch(step: float, code: int, offset: float) -> bool:
    """Whether ITK's writer (which writes seconds) leaves other time values than these in the header."""
    spacing, origin = itk_time(step, code, offset)
    return code != 8 or spacing != step or origin != offset


def patch_time(path: Path, step: float, code: int, offset: float) -> None:
    """Write ``pixdim[4]``, the time bits of ``xyzt_units`` and ``toffset`` into an uncompressed NIfTI-1 file."""
    with open(path, "r+b") as f:
        head = bytearray(f.read(348))
        e = "<" if struct.unpack("<i", head[:4])[0] == 348 else ">"
        struct.pack_into(e + "f", head, 92, step)
        head[123] = (head[123] & ~_TIME_BITS & 0xFF) | code
        struct.pack_into(e + "f", head, 136, offset)
        f.seek(0)
        f.write(head)


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


def _check_nifti(p: Path) -> _NiftiHeader | None:
    """Refuse truncated, oversized or non-finite NIfTI files; return the header (None without data in the file).

    SimpleITK (niftilib) silently zero-fills missing data and replaces NaN/Inf
    voxels by 0, so both are checked on the raw file before it is read.
    """
    where = str(p)
    opener = _opener(p)
    hdr = _nifti_header(p)
    if hdr is None:
        return None
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
    slope, inter = hdr.scaling
    if _scales(slope) and not math.isfinite(inter):
        raise InvalidImageError(  # as nibabel; niftilib would use 0 silently
            f"has a valid scl_slope ({slope:g}) but a non-finite scl_inter ({inter}) in its NIfTI header, so its "
            "voxel values are undefined; fix scl_inter (0 for no offset) or re-export the image",
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
    return hdr


def _scales(slope: float) -> bool:
    """Whether ``scl_slope`` asks for scaling: the standard says 0 means none; NaN and inf mean none too (nibabel)."""
    return math.isfinite(slope) and slope != 0


def _unscaled(itk: sitk.Image, p: Path, hdr: _NiftiHeader) -> sitk.Image:
    """The image with the voxels as stored, when the header asks for no scaling but ITK applied ``scl_inter``.

    ITK reads ``scl_slope`` 0 (or NaN, inf) as 1 and still adds ``scl_inter``,
    in float: the stored voxels are read again and put back, in their own type.
    """
    slope, inter = hdr.scaling
    if _scales(slope) or not math.isfinite(inter) or inter == 0 or hdr.dtype is None:
        return itk
    count = math.prod(hdr.shape)
    with _opener(p)(p, "rb") as f:
        f.seek(hdr.offset)
        raw = f.read(count * hdr.dtype.itemsize)
    arr = np.frombuffer(raw, dtype=hdr.dtype).astype(hdr.dtype.newbyteorder("="))
    shape = tuple(reversed(itk.GetSize()))
    if arr.size != count or math.prod(shape) != count:
        return itk
    out = sitk.GetImageFromArray(arr.reshape(shape))
    out.CopyInformation(itk)
    return out


def _affine_parts(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(origin, spacing, direction) in ITK's LPS convention of a NIfTI RAS 3x4 matrix; None when sheared."""
    lps = np.diag([-1.0, -1.0, 1.0]) @ m
    spacing = np.linalg.norm(lps[:, :3], axis=0)
    if not (spacing > 0).all():
        return None
    direction = lps[:, :3] / spacing
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
        return None
    return lps[:, 3], spacing, direction


def _qform_matrix(values: tuple[float, ...], pixdim: tuple[float, ...]) -> np.ndarray:
    """The qform's RAS 3x4 matrix (NIfTI-1 standard, as nibabel computes it)."""
    b, c, d, qx, qy, qz, qfac = values
    a2 = 1.0 - (b * b + c * c + d * d)
    if a2 <= 0.0:  # a quaternion of norm >= 1: a 180-degree rotation, renormalised
        n = math.sqrt(b * b + c * c + d * d)
        a, b, c, d = 0.0, b / n, c / n, d / n
    else:  # as nibabel: near 180 degrees niftilib's renormalisation (below 1e-7) moves the axes by up to 1e-3
        a = math.sqrt(a2)
    r = np.array([[a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
                  [2 * (b * c + a * d), a * a + c * c - b * b - d * d, 2 * (c * d - a * b)],
                  [2 * (b * d - a * c), 2 * (c * d + a * b), a * a + d * d - c * c - b * b]])
    scale = np.array([pixdim[0], pixdim[1], (-1.0 if qfac < 0 else 1.0) * pixdim[2]])
    return np.column_stack([r * scale, [qx, qy, qz]])


def _same_place(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> bool:
    """Whether two (origin, spacing, direction) agree within what float32 header fields can hold."""
    return (np.allclose(a[0], b[0], rtol=1e-5, atol=1e-3) and np.allclose(a[1], b[1], rtol=1e-4)
            and np.allclose(a[2], b[2], atol=1e-4))


def _describe(name: str, parts: tuple[np.ndarray, ...]) -> str:
    origin, spacing, direction = parts
    fmt = lambda v: "(" + ", ".join(f"{x:.4g}" for x in v) + ")"  # noqa: E731
    return f"{name}: origin {fmt(origin)} mm, spacing {fmt(spacing)} mm, direction ({', '.join(map(fmt, direction))})"


def _nifti_geometry(hdr: _NiftiHeader, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The (origin, spacing, direction), ITK's LPS convention, that a 3D NIfTI header gives, as nibabel reads it.

    The sform when its code is above 0, else the qform when its code is; None
    when neither is set (or the image is 2D).  A sheared sform (which medaug
    cannot represent) gives way to a valid qform.  When both are set and
    disagree, a warning names both and the one used.  ITK prefers the qform for
    some codes (e.g. qform_code 1 with sform_code 2) and takes the spacing from
    pixdim rather than the sform: medaug corrects both.
    """
    if len(hdr.pixdim) < 3:
        return None
    (_, qcode, quatern), (_, scode, srow) = hdr.transforms
    qform = _affine_parts(_qform_matrix(quatern, hdr.pixdim)) if qcode > 0 else None
    sform = _affine_parts(np.asarray(srow, dtype=float).reshape(3, 4)) if scode > 0 else None
    why: str | None
    if sform is not None:
        chosen, why = sform, f"the sform (sform_code {scode} > 0), as nibabel does"
    elif qform is not None:
        chosen, why = qform, ("the qform: the sform is sheared, which medaug cannot represent" if scode > 0
                              else None)
    else:
        return None
    if qform is not None and scode > 0 and why is not None and (sform is None or not _same_place(qform, sform)):
        sform_text = _describe("sform", sform) if sform is not None else "sform: sheared"
        warnings.warn(
            f"{where}: the qform and the sform of its NIfTI header disagree ({_describe('qform', qform)}; "
            f"{sform_text}); using {why}. If the other one is right, fix the header "
            "(e.g. nibabel: img.set_sform(img.get_qform(), code=1))",
            stacklevel=4,
        )
    return chosen


def _apply_geometry(itk: sitk.Image, hdr: _NiftiHeader, where: str) -> sitk.Image:
    """Give an image read by ITK the geometry its NIfTI header means (:func:`_nifti_geometry`).

    A 3D image, or a 4D one whose fourth axis holds channels: the three
    spatial axes get the header's origin, spacing and direction; the fourth
    axis keeps what ITK read.
    """
    dim = itk.GetDimension()
    chosen = _nifti_geometry(hdr, where)
    if chosen is None or dim not in (3, 4):
        return itk
    direction = np.array(itk.GetDirection()).reshape(dim, dim)
    current = (np.array(itk.GetOrigin()[:3]), np.array(itk.GetSpacing()[:3]), direction[:3, :3])
    if not _same_place(current, chosen):
        full = np.eye(dim)
        full[:3, :3] = chosen[2]
        if dim == 4:
            full[3, 3] = direction[3, 3]
        itk.SetOrigin(tuple(float(v) for v in chosen[0]) + tuple(itk.GetOrigin()[3:]))
        itk.SetSpacing(tuple(float(v) for v in chosen[1]) + tuple(itk.GetSpacing()[3:]))
        itk.SetDirection(tuple(float(v) for v in full.ravel()))
    return itk


def _nifti_version(p: Path) -> int | None:
    """1 or 2 from the first four bytes (``sizeof_hdr``) of a NIfTI file, None when neither."""
    try:
        with _opener(p)(p, "rb") as f:
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
        hdr = _nifti_header(target)
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
