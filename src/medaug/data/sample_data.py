"""Small real images for examples and tests, shipped with pydicom and nibabel (no download).

==================  =====================================  ====================================
name                file                                   loaded as
==================  =====================================  ====================================
``ct_small``        pydicom ``CT_small.dcm``               2D CT slice in HU, int16, 128 x 128
``mr_small``        pydicom ``MR_small.dcm``               2D MR slice, int16, 64 x 64
``epi_mri``         nibabel ``tests/data/example4d.nii.gz``  first 3D volume of a 4D EPI series
``anatomical_mri``  nibabel ``tests/data/anatomical.nii``    3D T1-weighted MR, 33 x 41 x 25
==================  =====================================  ====================================
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from ..errors import ImageReadError
from .image import Image
from .io import load

__all__ = ["ct_small", "mr_small", "epi_mri", "anatomical_mri", "sample_paths"]

_FILES: dict[str, tuple[str, str]] = {
    "ct_small": ("pydicom", "CT_small.dcm"),
    "mr_small": ("pydicom", "MR_small.dcm"),
    "epi_mri": ("nibabel", "example4d.nii.gz"),
    "anatomical_mri": ("nibabel", "anatomical.nii"),
}


def _sample_path(name: str) -> Path:
    package, filename = _FILES[name]
    hint = f"install the '{package}' package (pip install {package}) to use the sample '{name}'"
    try:
        module = importlib.import_module("pydicom.data" if package == "pydicom" else "nibabel")
    except ImportError as err:
        raise ImageReadError(f"sample file not available: {hint}", path=filename) from err
    if package == "pydicom":
        found = module.get_testdata_file(filename, download=False)
        path = Path(found) if found else Path(os.path.dirname(str(module.__file__)), "test_files", filename)
    else:
        path = Path(os.path.dirname(str(module.__file__)), "tests", "data", filename)
    if not path.is_file():
        raise ImageReadError(f"sample file not found; {hint} (a full install, with its test data)", path=path)
    return path


def sample_paths() -> dict[str, Path]:
    """The files behind the sample images, by sample name.

    Raises
    ------
    ImageReadError
        When pydicom or nibabel (or their shipped test data) is missing.
    """
    return {name: _sample_path(name) for name in _FILES}


def ct_small() -> Image:
    """A 2D axial CT slice (pydicom's ``CT_small.dcm``) in Hounsfield units, int16."""
    return load(_sample_path("ct_small"))


def mr_small() -> Image:
    """A 2D MR slice (pydicom's ``MR_small.dcm``), int16."""
    return load(_sample_path("mr_small"))


def epi_mri() -> Image:
    """The first volume of nibabel's 4D EPI example (``example4d.nii.gz``), 3D int16."""
    return load(_sample_path("epi_mri"), volume=0)


def anatomical_mri() -> Image:
    """nibabel's small 3D anatomical MR (``anatomical.nii``), int16."""
    return load(_sample_path("anatomical_mri"))
