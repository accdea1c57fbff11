"""Conversion between SimpleITK images and medaug :class:`~medaug.data.image.Image` objects."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ...errors import InvalidImageError
from ..grid import Grid
from ..image import Image

__all__ = ["image_from_sitk", "image_to_sitk"]

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
