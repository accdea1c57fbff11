"""Writing augmented cases: in the layout asked, dtype and format kept, files written atomically, manifest rows."""

from __future__ import annotations

import csv
import json
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..data.identifiers import IDENTIFIER_COLUMNS, header_fields
from ..data.image import Image
from ..data.io import save
from ..data.sample import Sample
from ..errors import ParameterError
from .cases import Case
from .jobs import output_path

__all__ = [
    "MANIFEST_COLUMNS", "LAYOUTS", "NIFTI_GZ", "cast_like", "escape_cell", "output_extension", "read_manifest",
    "unescape_cell", "write_item", "write_csv_atomic",
]

MANIFEST_COLUMNS = ["case_id", "index", "seed", "source_image", "source_label", "output_image", "output_label", "params"]


def cast_like(image: Image, dtype: np.dtype) -> Image:
    """Bring an augmented image back to the source dtype (rounded and clipped for integers)."""
    arr = image.array
    dtype = np.dtype(dtype)
    if arr.dtype == dtype:
        return image
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        arr = np.clip(np.rint(arr), info.min, info.max)
    return image.with_data(arr.astype(dtype))


def output_extension(source: Path) -> str:
    """The source's extension; DICOM (a folder or a ``.dcm`` file) is written as NIfTI."""
    name = source.name.lower()
    if source.is_dir() or name.endswith(".dcm") or "." not in name:
        return ".nii.gz"
    for ext in (".nii.gz", ".nii", ".mha", ".mhd", ".nrrd", ".nhdr", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"):
        if name.endswith(ext):
            return ".mha" if ext in (".mhd", ".nhdr") else ext
    return ".nii.gz"


#: Output layouts of ``medaug expand``: ``same`` follows the input (MSD stays MSD, nnU-Net stays nnU-Net).
LAYOUTS = ("same", "medaug", "msd", "nnunet")
#: The file ending of the MSD and nnU-Net layouts.
NIFTI_GZ = ".nii.gz"


def write_item(
    out: Sample, case: Case, index: int, seed: int, outdir: Path, dtypes: Mapping[str, Any], *, layout: str,
    name: str | None = None, identifiers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Save one augmented case (image with all its channels, label) in ``layout``; return its manifest row.

    Layouts (``stem`` is ``{case}_aug{index:03d}``, or ``{case}_orig``):

    * ``medaug``: ``images/{stem}{ext}`` and ``labels/{stem}{ext}`` in the source's
      format (DICOM becomes ``.nii.gz``); channels read from separate files are
      written as ``images/{stem}_{channel:04d}{ext}``, a multi-channel file as one file.
    * ``msd``: ``imagesTr/{stem}.nii.gz`` (a 4D NIfTI for several channels), ``labelsTr/{stem}.nii.gz``.
    * ``nnunet``: ``imagesTr/{stem}_{channel:04d}.nii.gz``, ``labelsTr/{stem}.nii.gz``.
    * In both, an unlabelled (test) image goes to ``imagesTs/``.

    Each channel file gets its source's dtype back (``metadata["channel_dtypes"]``
    of :func:`~medaug.datasets.cases.load_case`).  The row's ``output_image`` is
    the first image file; ``output_channels`` lists them all and ``label_values``
    the values written (both read by the dataset.json writers, not written to
    the manifest).  ``identifiers`` (only with ``--keep-identifiers``; see
    :mod:`medaug.data.identifiers`) go into the identifier columns and the
    files' headers.  An item is written whole or not at all: when a file cannot
    be written, the files of the item written so far are removed.
    """
    if layout not in LAYOUTS[1:]:
        raise ParameterError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS[1:])}")
    stem = name or f"{case.case_id}_aug{index:03d}"
    image = out["image"]
    nifti = layout in ("msd", "nnunet")
    img_dir, lab_dir = ("images", "labels") if layout == "medaug" else ("imagesTr", "labelsTr")
    if layout != "medaug" and case.label is None:
        img_dir = "imagesTs"  # unlabelled (test) images of a Decathlon or nnU-Net dataset
    ext = NIFTI_GZ if nifti else output_extension(case.image)
    lab_ext = NIFTI_GZ if nifti else output_extension(case.label) if case.label is not None else ext
    channel_dtypes = out.metadata.get("channel_dtypes") or [dtypes["image"]] * image.channels
    if layout == "nnunet" or (layout == "medaug" and len(case.image_files) > 1):
        files = [(output_path(outdir, img_dir, f"{stem}_{k:04d}{ext}"), image.channel(k), channel_dtypes[k])
                 for k in range(image.channels)]
    else:
        files = [(output_path(outdir, img_dir, f"{stem}{ext}"), image, dtypes["image"])]
    lab_path = output_path(outdir, lab_dir, f"{stem}{lab_ext}") if "label" in out and case.label is not None else None
    written: list[Path] = []
    label_values: list[int] = []
    try:
        for path, img, dtype in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            save(cast_like(img, dtype), path, header=header_fields(identifiers or {}, path.name))
            written.append(path)
        if lab_path is not None:
            lab_path.parent.mkdir(parents=True, exist_ok=True)
            label = cast_like(out["label"], dtypes["label"])
            label_values = [int(v) for v in np.unique(label.array)]
            save(label, lab_path, header=header_fields(identifiers or {}, lab_path.name))
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    row = {
        "case_id": case.case_id,
        "index": index,
        "seed": seed,
        "source_image": str(case.image),
        "source_label": str(case.label) if case.label else "",
        "output_image": str(files[0][0].relative_to(outdir)),
        "output_label": str(lab_path.relative_to(outdir)) if lab_path else "",
        "params": json.dumps(out.history, separators=(",", ":")),
        "output_channels": [str(p.relative_to(outdir)) for p, _, _ in files],
        "label_values": label_values,
    }
    if identifiers is not None:
        row.update({c: identifiers.get(c, "") for c in IDENTIFIER_COLUMNS})
    return row


#: What a spreadsheet takes as the start of a formula (OWASP, CSV injection): such a cell is written after a quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _needs_quote(text: str) -> bool:
    """Whether a cell is written with a leading ``'``: it starts (after any quotes) like a formula, and is no number.

    Quotes already leading a formula-like cell count, so that writing and
    reading undo each other exactly (``'=x`` is written ``''=x``).
    """
    bare = text.lstrip("'")
    return bare.startswith(_FORMULA_START) and not _NUMBER.fullmatch(bare)


def escape_cell(value: Any) -> str:
    """A manifest cell as written: ``=1+2`` becomes ``'=1+2`` (a spreadsheet shows it as text); ``-1`` stays."""
    text = "" if value is None else str(value)
    return "'" + text if _needs_quote(text) else text


def unescape_cell(text: str) -> str:
    """The value of a manifest cell written by :func:`escape_cell`."""
    return text[1:] if text.startswith("'") and _needs_quote(text[1:]) else text


def read_manifest(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """The rows of a CSV written by :func:`write_csv_atomic` (a manifest), cells as they were given."""
    with open(path, newline="", encoding="utf-8") as fh:
        return [{k: unescape_cell(v) if isinstance(v, str) else v for k, v in row.items()} for row in csv.DictReader(fh)]


def write_csv_atomic(path: Path, rows: list[dict[str, Any]], columns: list[str] = MANIFEST_COLUMNS, *,
                     private: bool = False) -> None:
    """Write a CSV through a temporary file and a rename, so readers never see half a file.

    Cells that a spreadsheet would run as a formula are written after a quote
    (:func:`escape_cell`; :func:`read_manifest` undoes it).  The file gets the
    permissions of the images beside it (0666 less the umask), or 0600 when
    ``private`` (e.g. the map of pseudonyms back to case ids).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(3)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o666)
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")  # rows may carry more (e.g. nnU-Net channels)
            writer.writeheader()
            writer.writerows({k: escape_cell(v) for k, v in row.items()} for row in rows)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
