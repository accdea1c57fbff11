"""Patient identifiers from DICOM headers, copied into outputs only on request (``--keep-identifiers``).

By default nothing from a DICOM header reaches what medaug writes: :func:`medaug.load`
keeps only the voxels and the geometry (spacing, origin, direction), outputs are
NIfTI, MetaImage, NRRD or PNG (never DICOM), and the manifest names only files
and the applied transforms.

With ``keep_identifiers`` (CLI ``--keep-identifiers`` of ``augment`` and
``expand``) the fields of :data:`KEPT_IDENTIFIERS` are read from the source
DICOM header and copied into:

* the manifest, as the columns ``patient_id``, ``study_date``, ``study_uid``
  and ``series_uid`` (every field, whole);
* MetaImage and NRRD outputs, as header fields named by the DICOM keyword
  (``PatientID``, ``StudyDate``, ``StudyInstanceUID``, ``SeriesInstanceUID``);
* NIfTI outputs, in the 80-character ``descrip`` field:
  ``PatientID=<id> StudyDate=<date>``, or ``PatientID=<id>`` alone when both do
  not fit (the UIDs never fit there: they are in the manifest).

Nothing else is ever copied, with or without the option: names, birth date,
accession number, institution, physicians, private tags stay out.
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from pathlib import Path

__all__ = ["IDENTIFIER_COLUMNS", "KEEP_IDENTIFIERS_WARNING", "KEPT_IDENTIFIERS", "header_fields", "read_identifiers"]

#: manifest column -> (DICOM tag as SimpleITK names it, DICOM keyword)
KEPT_IDENTIFIERS: dict[str, tuple[str, str]] = {
    "patient_id": ("0010|0020", "PatientID"),
    "study_date": ("0008|0020", "StudyDate"),
    "study_uid": ("0020|000d", "StudyInstanceUID"),
    "series_uid": ("0020|000e", "SeriesInstanceUID"),
}
#: the manifest columns added by ``keep_identifiers``
IDENTIFIER_COLUMNS: list[str] = list(KEPT_IDENTIFIERS)
#: the warning issued when identifiers are kept (the command line shows it as ``medaug COMMAND: warning: ...``)
KEEP_IDENTIFIERS_WARNING = (
    "--keep-identifiers: patient identifiers from the DICOM headers (patient ID, study date, study and "
    "series UIDs) are copied into the outputs"
)
_NIFTI_DESCRIP = 79  # NIfTI-1 descrip is char[80], NUL-terminated


def read_identifiers(source: str | PathLike[str]) -> dict[str, str]:
    """The :data:`KEPT_IDENTIFIERS` of a DICOM file or series folder (``{}`` for any other image).

    Parameters
    ----------
    source : str or PathLike
        The image a case was read from: a ``.dcm`` file, a DICOM file without an
        extension, or a folder holding a series (its first file is read).

    Returns
    -------
    dict
        ``{column: value}`` for the fields present and non-empty in the header.
    """
    import SimpleITK as sitk

    from .io._dicom import _dicom_series_files
    from .io._formats import _format_of

    p = Path(source)
    try:
        if p.is_dir():
            first = _dicom_series_files(p)[0]
        elif p.is_file() and _format_of(p) == "DICOM":
            first = str(p)
        else:
            return {}
    except Exception:  # noqa: BLE001 - not DICOM: no identifiers (the case's own read reports real problems)
        return {}
    reader = sitk.ImageFileReader()
    reader.SetImageIO("GDCMImageIO")
    reader.SetFileName(first)
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return {}
    out: dict[str, str] = {}
    for column, (tag, _keyword) in KEPT_IDENTIFIERS.items():
        if reader.HasMetaDataKey(tag):
            value = reader.GetMetaData(tag).strip().strip("\x00").strip()
            if value:
                out[column] = value
    return out


def header_fields(identifiers: Mapping[str, str], name: str) -> dict[str, str]:
    """The image-header entries (SimpleITK metadata) that carry ``identifiers`` in a file called ``name``.

    MetaImage and NRRD get one field per identifier, named by its DICOM keyword;
    NIfTI gets its ``descrip`` field (see the module notes); other formats nothing.
    """
    if not identifiers:
        return {}
    low = name.lower()
    if low.endswith((".mha", ".mhd", ".nrrd", ".nhdr")):
        return {KEPT_IDENTIFIERS[k][1]: v for k, v in identifiers.items() if k in KEPT_IDENTIFIERS}
    if low.endswith((".nii", ".nii.gz")):
        parts = [f"{KEPT_IDENTIFIERS[k][1]}={identifiers[k]}" for k in ("patient_id", "study_date") if k in identifiers]
        while parts and len(" ".join(parts)) > _NIFTI_DESCRIP:
            parts.pop()
        return {"ITK_FileNotes": " ".join(parts)} if parts else {}
    return {}
