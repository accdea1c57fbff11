"""Finding the cases of a dataset: a CSV, or a folder in one of the layouts medaug reads.

A dataset is a CSV with columns ``image``, optional ``label``, optional
``target`` (paths relative to the CSV's folder), or a folder with
``images/`` and optional ``labels/`` of matching file names (the Medical
Segmentation Decathlon's ``imagesTr/`` and ``labelsTr/``, and nnU-Net's
``_0000`` channel suffix, are accepted too).

Files ``CASE_0000``, ``CASE_0001`` ... are the input channels of one case
(sample images ``image``, ``image_0001`` ...).  A folder with an nnU-Net
``dataset.json`` is read by its rules: ``file_ending``, every case with all
the channels of ``channel_names`` and a label, label values within
``labels`` (checked when the case is loaded); see :mod:`medaug.datasets.nnunet`.
"""

from __future__ import annotations

import csv
import errno
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..data.io import SUPPORTED_FORMATS, check_utf8_name
from ..errors import ImageReadError, ParameterError
from .cases import Case, case_id_from_path, case_id_key, case_id_problem
from .jobs import is_medaug_output
from .msd import cases_from_msd, is_msd
from .nnunet import cases_from_files, read_dataset_json

__all__ = ["read_cases", "LAYOUT_HELP"]

_IMAGE_DIRS = (("images", "labels"), ("imagesTr", "labelsTr"), ("imagesTs", "labelsTs"))


def _is_image_file(p: Path) -> bool:
    if p.name.startswith("."):
        return False
    if p.is_dir():
        return not is_medaug_output(p)  # a DICOM series folder; a medaug output folder is no case
    return any(p.name.lower().endswith(ext) for ext in SUPPORTED_FORMATS)


def _check_entry(p: Path, folder: Path) -> None:
    """Refuse a dataset entry no reader can handle: a non-UTF-8 name or a symbolic link loop.

    Raises
    ------
    ImageReadError
        Naming the entry; found before any work starts, so a long job does not
        stop (or hang) half-way.
    """
    check_utf8_name(p)
    if not p.is_symlink():
        return
    loop = False
    try:
        target = p.resolve(strict=True)
        loop = target.is_dir() and (folder.resolve() == target or folder.resolve().is_relative_to(target))
    except RuntimeError:  # Python < 3.13 reports a loop this way
        loop = True
    except OSError as err:
        loop = err.errno == errno.ELOOP
    if loop:
        raise ImageReadError(
            f"is a symbolic link loop (it leads back to {os.readlink(p)!r} and never to an image); remove the link "
            "or point it at the image file or DICOM folder",
            path=p,
        )


#: What a folder may look like, for the error that says none was found.
LAYOUT_HELP = (
    "medaug reads a CSV (columns image[,label][,target][,case_id]), a folder with images/ [and labels/], a Medical "
    "Segmentation Decathlon task as downloaded (imagesTr/, labelsTr/, dataset.json listing 'training'), or an nnU-Net "
    "v2 dataset (imagesTr/ CASE_XXXX files, labelsTr/, dataset.json with 'channel_names'): rename the folders, add a "
    "dataset.json, or list the files in a CSV and pass that"
)


def read_cases(source: str | Path, *, include_test: bool = False) -> list[Case]:
    """The cases of a CSV file or a dataset folder, in a stable order.

    A folder is read by its layout: a Decathlon ``dataset.json`` (with a
    ``training`` list) pairs images and labels itself (:mod:`.msd`; its
    ``test`` images only with ``include_test``); an nnU-Net ``dataset.json``
    groups ``CASE_XXXX`` channel files (:mod:`.nnunet`); otherwise
    ``images/`` (or ``imagesTr/``) is matched with ``labels/`` by file name.

    A folder among the images or labels is a DICOM series, unless it is the
    output folder of a medaug job (it holds ``.medaug/`` or medaug's
    ``manifest.csv``, e.g. ``medaug augment images/ct.nii.gz -o images/aug``):
    such a folder is skipped, never read as a case.

    Every case id is checked here, once, before any work: it must be a safe
    file name (:func:`case_id_problem`) and unique after normalisation
    (:func:`case_id_key`: ``Case1`` and ``case1`` would overwrite each other on
    a case-insensitive file system).

    Raises
    ------
    ParameterError
        When the CSV lacks an ``image`` column, a folder has no ``images/`` (or
        ``imagesTr/``) sub-folder, or a case id is unsafe or collides with
        another (naming the CSV line or the file).
    """
    src = Path(source)
    check_utf8_name(src)
    if not src.exists():
        raise ImageReadError("dataset not found", path=src)
    found: Iterable[tuple[Case, str]]
    if src.is_file():
        found = _from_csv(src)  # streamed: checked row by row, so a bad row fails at once
    else:
        found = [(c, f"case '{c.case_id}' (from {c.image})") for c in _from_folder(src, include_test)]
    seen: dict[str, str] = {}
    cases = []
    for c, origin in found:
        problem = case_id_problem(c.case_id)
        if problem:
            raise ParameterError(f"{origin}: the case id {c.case_id!r} {problem}; rename the case", path=src)
        key = case_id_key(c.case_id)
        if key in seen:
            raise ParameterError(
                f"{origin} and {seen[key]} have the same case id (compared without case, as file names on macOS "
                "and Windows): their outputs would overwrite each other; give them distinct ids",
                path=src,
            )
        seen[key] = origin
        cases.append(c)
    if not cases:
        raise ParameterError("the dataset lists no cases", path=src)
    return cases


def _from_csv(path: Path) -> Iterator[tuple[Case, str]]:
    """The CSV's cases as they are read, each with where it was read ("line N").

    Streamed: a bad row stops the reading at once, however many rows follow.
    ``utf-8-sig`` accepts Excel's byte-order mark; CRLF line ends are read as
    any.  Paths are made absolute against the CSV's folder by text (one
    ``resolve`` for the folder, none per row).
    """
    base = path.parent.resolve()
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            if "image" not in (reader.fieldnames or []):
                raise ParameterError("the CSV needs an 'image' column (and optionally 'label', 'target', 'case_id')",
                                     path=path)
            start = reader.line_num + 1  # a quoted cell may span lines: a row is named by its first line
            for row in reader:
                yield _csv_case(row, base, f"line {start}", path)
                start = reader.line_num + 1
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ParameterError(f"cannot read the CSV: {exc}", path=path) from exc


def _csv_case(row: dict[str, Any], base: Path, where: str, path: Path) -> tuple[Case, str]:
    """One CSV row as a case; ``where`` ("line N") leads any error."""
    image_text = (row.get("image") or "").strip()
    if not image_text:
        raise ParameterError(f"{where}: empty 'image'", path=path)
    image = Path(os.path.normpath(os.path.join(base, image_text)))
    label_text = (row.get("label") or "").strip()
    label = Path(os.path.normpath(os.path.join(base, label_text))) if label_text else None
    target: Any = (row.get("target") or "").strip() or None
    if target is not None:
        try:
            target = int(target)
        except ValueError:
            try:
                target = float(target)
            except ValueError:
                pass
    cid = row.get("case_id") or ""
    cid = cid.strip(" ") if cid.strip() else case_id_from_path(image)
    problem = case_id_problem(cid)
    if problem:
        raise ParameterError(f"{where}: the case id {cid!r} {problem}; rename the case", path=path)
    return Case(cid, image, label, target), where


def _from_folder(folder: Path, include_test: bool) -> list[Case]:
    info = read_dataset_json(folder)
    if is_msd(info):
        return cases_from_msd(folder, info, include_test=include_test)  # type: ignore[arg-type]
    for img_dir, lab_dir in _IMAGE_DIRS:
        images = folder / img_dir
        if images.is_dir():
            labels = folder / lab_dir
            break
    else:
        raise ParameterError(f"is not a dataset folder medaug recognises; {LAYOUT_HELP}", path=folder)
    label_files = {}
    if labels.is_dir():
        for p in sorted(labels.iterdir()):
            if _is_image_file(p):
                _check_entry(p, labels)
                label_files[case_id_from_path(p)] = p
    files = []
    for p in sorted(images.iterdir()):
        if not _is_image_file(p):
            continue
        _check_entry(p, images)
        files.append(p)
    return cases_from_files(folder, images, labels, files, label_files.values())
