"""File formats: extensions, format names, SimpleITK pixel types and ITK messages."""

from __future__ import annotations

import re
from os import PathLike
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ...errors import ImageReadError

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
