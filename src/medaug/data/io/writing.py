"""Writing images atomically: :func:`save` and :func:`write_itk`."""

from __future__ import annotations

import errno
import gzip
import os
import secrets
import shutil
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ...errors import ImageWriteError, ParameterError
from ..image import Image
from ._formats import _DETACHED, _EIGHT_BIT_ONLY, SUPPORTED_FORMATS, PathType, _extension, _itk_reason
from ._native import _native_stderr_to_log
from ._nifti import _nifti_incomplete, itk_time, needs_time_patch, patch_time, time_axis
from ._paths import check_utf8_name
from .convert import image_to_sitk

__all__ = ["save", "write_itk"]

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

    Notes
    -----
    An image with channels is written in the format's own layout: a 4D NIfTI
    (channels along the fourth axis, as the Medical Segmentation Decathlon), a
    multi-component MetaImage/NRRD/TIFF, an RGB(A) PNG or RGB JPEG/BMP.  A 4D
    NIfTI gets back the time axis its source had (``pixdim[4]``, the time units
    of ``xyzt_units``, ``toffset``: ``image.metadata``, see :class:`Image`).

    Raises
    ------
    ImageWriteError
        Unsupported extension, missing folder, a dtype, dimensionality or
        channel count the format cannot hold (e.g. float data as PNG), or a
        write failure.
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
        raise ImageWriteError(
            f"{what}; use .nii.gz, .nii, .mha, .mhd, .nrrd, .nhdr, or for 2D images .png, .jpg, .tif, .bmp",
            path=where,
        )
    if not p.parent.is_dir():
        raise ImageWriteError(f"the folder {p.parent} does not exist; create it first", path=where)
    _check_writable(image.ndim, image.array.dtype, fmt, where, image.channels if image.channel_axis else 0)
    itk = image_to_sitk(image, channels_as="series" if fmt == "NIfTI" else "vector")
    for key, value in (header or {}).items():
        itk.SetMetaData(key, value)
    time = time_axis(image.metadata) if fmt == "NIfTI" and itk.GetDimension() == 4 else None
    if time is not None:
        spacing, origin = itk_time(*time)
        itk.SetSpacing((*itk.GetSpacing()[:3], spacing))
        itk.SetOrigin((*itk.GetOrigin()[:3], origin))
    write_itk(itk, p, compress=compress, nifti_time=time)


def write_itk(itk: sitk.Image, path: PathType, *, compress: bool = False,
              nifti_time: tuple[float, int, float] | None = None) -> None:
    """Write a SimpleITK image atomically (temporary name in the same folder, then rename).

    The one place medaug writes image files; :func:`save` and the displacement
    fields of :mod:`medaug.registration` go through it.  ``nifti_time``
    (``pixdim[4]``, time code of ``xyzt_units``, ``toffset``) is written into a
    4D NIfTI's header where ITK's writer (which writes seconds) would not.

    Raises
    ------
    ImageWriteError
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
                _write_nifti_time(itk, tmp, compress, where, nifti_time)
                os.replace(tmp, p)
            finally:
                tmp.unlink(missing_ok=True)
    except OSError as err:
        reason = err.strerror or str(err)
        raise ImageWriteError(f"cannot be written: {reason}; check the path and permissions", path=where) from err


def _check_writable(ndim: int, dtype: np.dtype, fmt: str, where: str, channels: int = 0) -> None:
    """Refuse what a 2D picture format cannot hold (TIFF and the 3D formats take any dtype and channels).

    ``channels`` is 0 for an image without a channel axis.
    """
    if fmt in ("PNG", "JPEG", "BMP"):
        if channels and channels not in ((3, 4) if fmt == "PNG" else (3,)):
            raise ImageWriteError(
                f"{fmt} holds grey or RGB{'(A)' if fmt == 'PNG' else ''} pictures but this image has {channels} "
                "channels; save it as .nii.gz, .mha, .nrrd or .tif",
                path=where,
            )
        if ndim != 2:
            raise ImageWriteError(
                f"{fmt} holds only 2D images but this image is {ndim}D; save it as .nii.gz, .mha or .nrrd",
                path=where,
            )
        allowed = (np.uint8,) if fmt in _EIGHT_BIT_ONLY else (np.uint8, np.uint16)
        if dtype not in [np.dtype(a) for a in allowed] and dtype != np.bool_:
            kinds = "8-bit" if fmt in _EIGHT_BIT_ONLY else "8- or 16-bit"
            raise ImageWriteError(
                f"{fmt} stores only {kinds} unsigned integers but the image is {dtype}; save it as .mha, "
                ".nrrd or .nii.gz to keep the values, or rescale and cast it to "
                f"{' / '.join(np.dtype(a).name for a in allowed)} first",
                path=where,
            )


def _write_nifti_time(itk: sitk.Image, target: Path, compress: bool, where: str,
                      nifti_time: tuple[float, int, float] | None) -> None:
    """:func:`_write`, then the time axis ITK's writer cannot hold put into the header (:func:`patch_time`).

    A ``.nii.gz`` is then written uncompressed first, patched, and compressed
    into ``target`` (as niftilib does: zlib's default level).
    """
    if nifti_time is None or not needs_time_patch(*nifti_time):
        _write(itk, target, compress, where)
        return
    if not target.name.lower().endswith(".gz"):
        _write(itk, target, compress, where)
        patch_time(target, *nifti_time)
        return
    raw = target.with_name(target.name[:-3])
    try:
        _write(itk, raw, False, where)
        patch_time(raw, *nifti_time)
        with open(raw, "rb") as src, gzip.GzipFile(target, "wb", compresslevel=6, mtime=0) as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
    finally:
        raw.unlink(missing_ok=True)


def _write(itk: sitk.Image, target: Path, compress: bool, where: str) -> None:
    """Write ``itk`` to the temporary ``target``; errors name the final file ``where`` (never the temporary name).

    niftilib and MetaIO print their own complaints on a failed write straight to
    stderr: they go to the debug log, as while reading.
    """
    writer = sitk.ImageFileWriter()
    writer.SetFileName(str(target))
    writer.SetUseCompression(compress or str(target).lower().endswith(".gz"))
    try:
        with _native_stderr_to_log():
            writer.Execute(itk)
    except RuntimeError as err:
        full = _disk_full(target, itk, str(err))
        reason = f"{full.strerror}; free some space" if full else _itk_reason(err).replace(str(target), where)
        raise ImageWriteError(f"cannot be written: {reason}", path=where) from (full or err)
    short = _nifti_incomplete(target)
    if short:  # niftilib reports a short write (a full disk) only on stderr, and returns as if all went well
        full = _disk_full(target, itk, "")
        reason = f"{full.strerror}; free some space" if full else f"the written file is incomplete ({short})"
        raise ImageWriteError(f"cannot be written: {reason}", path=where) from (full or OSError(errno.EIO, short))


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
