"""Conversion between SimpleITK images and medaug :class:`~medaug.data.image.Image` objects."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from ...errors import InvalidImageError
from ..grid import Grid
from ..image import Image

__all__ = ["image_from_sitk", "image_to_sitk"]

def image_from_sitk(itk: sitk.Image, *, is_label: bool = False, path: str | None = None,
                    channel_names: tuple[str, ...] | None = None) -> Image:
    """Convert a SimpleITK image to an :class:`Image` (a copy of the voxels).

    A scalar 2D/3D image becomes a scalar image; a vector image (several
    components per voxel, as multi-component MetaImage/NRRD or RGB) and a 4D
    scalar image (as a 4D NIfTI of MRI sequences) become an image with a
    channel axis, (C, z, y, x), on the grid of the spatial axes.

    Raises
    ------
    InvalidImageError
        Naming ``path``: not 2D-4D, empty, or invalid geometry.
    """
    ncomp = itk.GetNumberOfComponentsPerPixel()
    dim = itk.GetDimension()
    if dim not in (2, 3, 4) or (dim == 4 and ncomp != 1):
        raise InvalidImageError(f"is {dim}D with {ncomp} value(s) per voxel; medaug works on 2D or 3D images, "
                                "with channels", path=path)
    arr = sitk.GetArrayFromImage(itk)
    if arr.size == 0:
        raise InvalidImageError(f"is empty (size {itk.GetSize()}); the file holds no voxels", path=path)
    spacing, origin, direction = itk.GetSpacing(), itk.GetOrigin(), np.asarray(itk.GetDirection())
    channel_axis = ncomp > 1 or dim == 4
    if ncomp > 1:
        arr = np.ascontiguousarray(np.moveaxis(arr, -1, 0))
    elif dim == 4:  # (t, z, y, x): the fourth axis holds the channels
        spacing, origin = spacing[:3], origin[:3]
        direction = direction.reshape(4, 4)[:3, :3]
    if is_label and channel_axis:
        raise InvalidImageError(f"a label map must have one value per voxel; this one has {arr.shape[0]} channels",
                                path=path)
    shape = arr.shape[1:] if channel_axis else arr.shape
    try:
        grid = Grid(shape, spacing, origin, direction)
    except InvalidImageError as err:
        raise InvalidImageError(
            f"has invalid geometry in its header ({err}); fix the header or re-export the image", path=path
        ) from err
    return Image(arr, grid=grid, is_label=is_label, path=path, channel_axis=channel_axis, channel_names=channel_names)


def image_to_sitk(image: Image, *, channels_as: str = "vector") -> sitk.Image:
    """Convert an :class:`Image` (NumPy or torch data) to a SimpleITK image with its geometry.

    Parameters
    ----------
    image : Image
    channels_as : {"vector", "series"}
        For an image with a channel axis: one vector image (several components
        per voxel: MetaImage, NRRD, TIFF, RGB PNG/JPEG) or a 4D scalar image with
        the channels along the fourth axis (NIfTI, as the Medical Segmentation
        Decathlon stores MRI sequences).
    """
    arr = np.ascontiguousarray(image.array)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    elif arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    direction = tuple(float(v) for v in np.asarray(image.direction).ravel())
    if image.channel_axis and channels_as == "series":
        parts = [sitk.GetImageFromArray(a, isVector=False) for a in arr]
        for part in parts:
            part.SetSpacing(image.spacing)
            part.SetOrigin(image.origin)
            part.SetDirection(direction)
        return sitk.JoinSeries(parts)
    if image.channel_axis:
        itk = sitk.GetImageFromArray(np.ascontiguousarray(np.moveaxis(arr, 0, -1)), isVector=True)
    else:
        itk = sitk.GetImageFromArray(arr, isVector=False)
    itk.SetSpacing(image.spacing)
    itk.SetOrigin(image.origin)
    itk.SetDirection(direction)
    return itk
