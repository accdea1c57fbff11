"""Reading images: :func:`load` and :func:`read_header`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from ...errors import ImageReadError, InvalidImageError, ParameterError
from ..image import Image
from ._dicom import _check_dicom_file, _check_slice_positions, _collapse_slice, _dicom_series_files
from ._formats import PathType, _fits, _format_of, _itk_dtype, _itk_reason
from ._itk import _info_reader, _read_file
from ._native import _HEADER_ROOM, _check_memory, _native_read, _native_stderr_to_log
from ._nifti import _apply_geometry, _check_nifti, _nifti_geometry, _nifti_header, _unscaled, time_metadata
from ._paths import _check_input_path
from .convert import image_from_sitk

__all__ = ["load", "read_header"]

def load(path: PathType, *, label: bool = False, volume: int | None = None, channels: str | None = None) -> Image:
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
        For a 4D image, the index of the one 3D volume to return.  Without it,
        a 4D image (e.g. a Decathlon NIfTI holding four MRI sequences) is read
        whole, its volumes as channels.
    channels : {None, "rgb"}
        ``"rgb"``: read a colour picture (PNG, JPEG, TIFF, BMP, DICOM) as three
        channels R, G, B.  An alpha channel is dropped only when it is fully
        opaque (it then carries nothing); a colour picture with transparent
        pixels is refused, since the colours under them are undefined and
        augmentation would treat them as image content: flatten it onto its
        background first, or save the alpha mask as a label file.  Without
        ``channels`` a colour picture is refused (a grey one stored as RGB(A)
        is read as grey, alpha dropped as for a grey + alpha PNG).
        Multi-component MetaImage/NRRD/NIfTI images always keep their
        components as channels.

    Returns
    -------
    Image
        2D ``(y, x)`` or 3D ``(z, y, x)`` image with the file's geometry, or
        ``(C, z, y, x)`` / ``(C, y, x)`` with a channel axis; an intensity image
        keeps the file's dtype.

    Raises
    ------
    ImageReadError
        The path does not exist, the format is not supported, or the file is
        unreadable, corrupt or truncated.
    InvalidImageError
        The image has NaN/Inf voxels, is empty, complex, colour without
        ``channels="rgb"`` (or with it, but with transparent pixels), too large for memory, or a DICOM series misses a
        slice; or, with ``label=True``, holds several channels, non-integer or
        negative values.
    ParameterError
        ``volume`` is out of range, or given for an image that is not 4D;
        ``channels`` is not None or ``"rgb"``.
    """
    if channels not in (None, "rgb"):
        raise ParameterError(f"channels must be None or 'rgb', got {channels!r}", path=path)
    p = Path(path)
    where = str(p)
    _check_input_path(p)
    with _native_stderr_to_log():  # ITK's helpers (VNL) may also print on a degenerate geometry
        itk, fmt, metadata = _read_any(p, volume, where)
        itk, names = _colour(itk, fmt, channels, where)
        if label and (itk.GetNumberOfComponentsPerPixel() > 1 or itk.GetDimension() == 4):
            n = itk.GetNumberOfComponentsPerPixel() if itk.GetNumberOfComponentsPerPixel() > 1 else itk.GetSize()[3]
            raise InvalidImageError(
                f"a label map must hold one value per voxel, but this image has {n} channels; save the label map as "
                "one 3D image (in Python, load(path, label=True, volume=K) picks one volume of a 4D series)",
                path=where,
            )
        image = image_from_sitk(itk, is_label=False, path=where, channel_names=names)
        image.metadata.update(metadata)
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


def _read_any(p: Path, volume: int | None, where: str) -> tuple[sitk.Image, str, dict[str, Any]]:
    """The file or DICOM folder as one 2D/3D SimpleITK image (vector or 4D for channels), its format name, and
    what its header holds beyond the grid (a 4D NIfTI's time axis, :func:`~._nifti.time_metadata`)."""
    nifti = None
    if p.is_dir():
        itk, fmt = _read_dicom_folder(p), "DICOM"
    else:
        fmt = _format_of(p)
        if fmt == "NIfTI":
            nifti = _check_nifti(p)
        elif fmt == "DICOM":
            _check_dicom_file(p)
        itk = _read_file(p, fmt)
    if nifti is not None:
        itk = _unscaled(itk, p, nifti)
    itk = _select_volume(itk, volume, where)
    if nifti is not None:
        itk = _apply_geometry(itk, nifti, where)
    if fmt == "DICOM" and itk.GetDimension() == 3 and itk.GetSize()[2] == 1:
        itk = _collapse_slice(itk, where)
    metadata = time_metadata(nifti) if nifti is not None and itk.GetDimension() == 4 else {}
    return itk, fmt, metadata


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
    place: tuple[tuple[float, ...], ...] = (reader.GetOrigin(), reader.GetSpacing(), reader.GetDirection())
    header = _nifti_header(p) if fmt == "NIfTI" and reader.GetDimension() in (3, 4) else None
    chosen = _nifti_geometry(header, where) if header is not None else None
    if chosen is not None:  # as load() gives it (the spatial axes; a 4th axis of channels keeps ITK's values)
        dim = reader.GetDimension()
        direction = np.eye(dim)
        direction[:3, :3] = chosen[2]
        if dim == 4:
            direction[3, 3] = reader.GetDirection()[15]
        place = (tuple(float(v) for v in chosen[0]) + tuple(reader.GetOrigin()[3:]),
                 tuple(float(v) for v in chosen[1]) + tuple(reader.GetSpacing()[3:]),
                 tuple(float(v) for v in direction.ravel()))
    return {
        "format": fmt,
        "shape": shape,
        "spacing": place[1],
        "origin": place[0],
        "direction": place[2],
        "dtype": str(_itk_dtype(reader.GetPixelID())),
        "components": reader.GetNumberOfComponents(),
        **extra,
    }


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
    """One volume of a 4D image (``volume=K``); a 4D image is otherwise kept whole: its volumes are channels."""
    dim = itk.GetDimension()
    if dim > 4:
        raise InvalidImageError(f"is {dim}D; medaug works on 2D or 3D images, with channels", path=where)
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
        return itk
    k = 0 if volume is None else int(volume)
    if not 0 <= k < n:
        raise ParameterError(f"volume={volume} is out of range; the image has {n} volumes (0 to {n - 1})", path=where)
    return sitk.Extract(itk, [*size[:3], 0], [0, 0, 0, k], sitk.ExtractImageFilter.DIRECTIONCOLLAPSETOSUBMATRIX)


#: Formats whose several components per pixel are colours.
_COLOUR_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "DICOM")


def _colour(itk: sitk.Image, fmt: str, channels: str | None, where: str) -> tuple[sitk.Image, tuple[str, ...] | None]:
    """Grey RGB(A) as one channel; colour as R, G, B channels when ``channels="rgb"``, else refused.

    With ``channels="rgb"`` an alpha channel is dropped when fully opaque and
    refused otherwise (see :func:`load`).  Grey + alpha is read as grey.  Vector images of other formats
    (multi-component MetaImage/NRRD/NIfTI) and pictures of more than four
    components keep their components as channels.
    """
    ncomp = itk.GetNumberOfComponentsPerPixel()
    nifti_rgb = fmt == "NIfTI" and ncomp in (3, 4) and itk.GetPixelID() == sitk.sitkVectorUInt8  # RGB24/RGBA32
    if ncomp == 1 or (fmt not in _COLOUR_FORMATS and not nifti_rgb):
        return itk, None
    if ncomp in (3, 4):
        rgb = sitk.GetArrayViewFromImage(itk)[..., :3]
        if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
            return sitk.VectorIndexSelectionCast(itk, 0), None
        if channels == "rgb":
            if ncomp == 4:  # alpha is a display mask, not an image channel: dropped only when it hides nothing
                _check_opaque(sitk.GetArrayViewFromImage(itk)[..., 3], where)
                itk = sitk.Compose([sitk.VectorIndexSelectionCast(itk, i) for i in range(3)])
            return itk, ("R", "G", "B")
        raise InvalidImageError(
            "is an RGB colour image; read it as three channels with channels='rgb' (command line: --channels rgb), "
            "or convert it to greyscale first (e.g. with Pillow: Image.open(path).convert('L').save(new_path))",
            path=where,
        )
    if ncomp == 2:  # grey + alpha
        return sitk.VectorIndexSelectionCast(itk, 0), None
    return itk, None  # more than four components: not colours but channels (e.g. a multi-channel TIFF)


def _check_opaque(alpha: np.ndarray, where: str) -> None:
    """Refuse a colour picture whose alpha channel is not fully opaque (the colours under it would be read as seen).

    Raises
    ------
    InvalidImageError
        Naming the file, how many pixels are transparent, and what to do.
    """
    opaque = np.iinfo(alpha.dtype).max if alpha.dtype.kind in "iu" else 1.0
    clear = int(np.count_nonzero(alpha < opaque))
    if clear:
        raise InvalidImageError(
            f"has an alpha channel that is not fully opaque ({clear} of {alpha.size} pixels partly or fully "
            "transparent), which channels='rgb' (--channels rgb) would drop, leaving the colours under it as image "
            "content; flatten the picture onto its background first (e.g. with Pillow: "
            "Image.alpha_composite(Image.new('RGBA', im.size, 'black'), im).convert('RGB')), or save the alpha as "
            "a label map",
            path=where,
        )


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
