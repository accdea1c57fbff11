"""Reading one file through SimpleITK: header first, size checked, errors made specific."""

from __future__ import annotations

import math
from pathlib import Path

import SimpleITK as sitk

from ...errors import ImageReadError, InvalidImageError
from ._dicom import _dicom_without_pixels
from ._formats import _SUPPORTED_TEXT, _extension, _is_dicom_file, _itk_dtype, _itk_reason
from ._headers import check_data_files, check_metaimage_geometry, check_metaimage_size
from ._native import _HEADER_ROOM, _check_memory, _native_read
from ._nifti import _nifti_version
from ._raster import GREY_ALPHA, check_bmp, check_jpeg, check_tiff, png_colour, read_grey_alpha_png

#: The one ITK reader for each format: never left to ITK's guess from the content or name.
_IMAGE_IO = {
    "NIfTI": "NiftiImageIO", "MetaImage": "MetaImageIO", "NRRD": "NrrdImageIO", "DICOM": "GDCMImageIO",
    "PNG": "PNGImageIO", "JPEG": "JPEGImageIO", "TIFF": "TIFFImageIO", "BMP": "BMPImageIO",
}


def _info_reader(p: Path, fmt: str, where: str) -> sitk.ImageFileReader:
    """A reader pinned to ``fmt``'s ITK reader, with the header read (no voxels).

    The gate of every single-file read: headers naming other data files,
    multi-page TIFFs, short or compressed BMPs and cut JPEGs are checked here,
    before ITK opens anything.
    """
    if fmt in ("MetaImage", "NRRD"):
        check_data_files(p, fmt)
        if fmt == "MetaImage":
            check_metaimage_geometry(p)
    elif fmt == "TIFF":
        check_tiff(p)
    elif fmt == "BMP":
        check_bmp(p)
    elif fmt == "JPEG":
        check_jpeg(p)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(p))
    reader.SetImageIO(_IMAGE_IO[fmt])
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
    if fmt == "PNG" and p is not None and (png_colour(p) or (None,))[0] == GREY_ALPHA:
        return ImageReadError("is a grey + alpha PNG, whose header SimpleITK cannot read (load() reads the image as "
                              "grey); save it as greyscale without alpha", path=where)
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


def _read_file(p: Path, fmt: str) -> sitk.Image:
    where = str(p)
    if fmt == "PNG":
        grey = read_grey_alpha_png(p)  # SimpleITK refuses grey + alpha
        if grey is not None:
            return sitk.GetImageFromArray(grey)
    reader = _info_reader(p, fmt, where)
    size = reader.GetSize()
    nbytes = math.prod(size) * reader.GetNumberOfComponents() * _itk_dtype(reader.GetPixelID()).itemsize
    _check_memory(nbytes, size, where)
    if fmt == "MetaImage":
        check_metaimage_size(p)  # ITK calls a cut file only "cannot be read"
    try:
        with _native_read(_HEADER_ROOM + 3 * nbytes if fmt == "DICOM" else None):
            return reader.Execute()
    except RuntimeError as err:
        raise _unreadable(fmt, err, where, p) from err
