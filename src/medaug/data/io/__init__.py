"""Reading and writing images through SimpleITK.

:func:`load` reads NIfTI (``.nii``, ``.nii.gz``), MetaImage (``.mha``, ``.mhd``),
NRRD (``.nrrd``, ``.nhdr``), DICOM (one file, or a folder holding a series) and
2D PNG/JPEG/TIFF/BMP into an :class:`~medaug.data.image.Image`; :func:`save`
writes the same formats (except DICOM) atomically.

Conventions and decisions
-------------------------
* Voxel values keep the file's dtype (``int16`` CT stays ``int16``); a DICOM
  image whose rescaled values SimpleITK returns as ``int32`` is narrowed back to
  ``int16`` when every value fits.
* DICOM values are rescaled (RescaleSlope/RescaleIntercept), so CT is in HU.
* A single-frame DICOM file (or a one-file series) loads as a 2D ``(y, x)``
  image: spacing and origin are the first two entries of the 3D ones and the
  direction is the in-plane 2x2 block when that block is orthonormal (axial
  slices); otherwise the direction is the identity and a warning is issued.
  A multi-frame file loads as 3D.
* SimpleITK (niftilib) silently zero-fills a truncated NIfTI file and reads
  NaN/Inf voxels of a NIfTI file as 0, so NIfTI files are checked against their
  header (data size, gzip integrity, finite floats) before reading.
* GDCM likewise zero-fills the missing pixels of a cut (uncompressed) DICOM
  file, so its pixel data is checked against Rows x Columns x frames x samples
  x BitsAllocated first.
* Headers that claim more voxels than the available memory (the smallest of
  MemAvailable, the container's cgroup limit and ``ulimit -v``) are refused
  before any allocation.
* Paths that are not valid UTF-8 are refused (the C++ readers abort the whole
  process on them), as are symbolic link loops; a file without read permission
  gets a "permission denied" error.

Rooms of this package: :mod:`.reading` (``load``, ``read_header``), :mod:`.writing`
(``save``, ``write_itk``), :mod:`.convert` (SimpleITK <-> Image), and private checks
per concern: ``_paths`` (the input path), ``_formats``, ``_native`` (memory, native
stderr), ``_nifti``, ``_dicom``, ``_itk`` (one file through SimpleITK).
"""

from ._formats import SUPPORTED_FORMATS, PathType
from ._paths import check_utf8_name
from .convert import image_from_sitk, image_to_sitk
from .reading import load, read_header
from .writing import save, write_itk

__all__ = [
    "load", "save", "read_header", "write_itk", "image_from_sitk", "image_to_sitk", "check_utf8_name",
    "SUPPORTED_FORMATS", "PathType",
]
