"""DICOM checks with pydicom before GDCM reads, and the series of a folder."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import stat
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ...errors import ImageReadError, InvalidImageError
from ._formats import _SUPPORTED_TEXT, _is_dicom_file, _itk_reason
from ._native import _HEADER_ROOM, _native_read
from ._paths import check_utf8_name, file_kind


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
        try:
            mode = os.stat(p).st_mode
        except OSError:
            continue  # a broken link: GDCM skips it
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise ImageReadError(
                f"holds {name!r}, which is {file_kind(mode)}: the DICOM scan would block on it; remove it from "
                "the folder",
                path=str(folder),
            )
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
