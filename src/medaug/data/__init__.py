"""The data model and I/O: images, grids, samples, file reading/writing, sample data and phantoms."""

from __future__ import annotations

from .grid import Grid
from .image import Image
from .io import image_from_sitk, image_to_sitk, load, read_header, save
from .phantoms import shepp_logan_2d, shepp_logan_3d
from .sample import Sample
from .sample_data import anatomical_mri, ct_small, epi_mri, mr_small, sample_paths

__all__ = [
    "Grid",
    "Image",
    "Sample",
    "load",
    "save",
    "read_header",
    "image_from_sitk",
    "image_to_sitk",
    "ct_small",
    "mr_small",
    "epi_mri",
    "anatomical_mri",
    "sample_paths",
    "shepp_logan_2d",
    "shepp_logan_3d",
]
