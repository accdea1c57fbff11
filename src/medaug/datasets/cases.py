"""Cases: what a dataset lists (image, optional label, optional target), and how to find them.

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
import re
import unicodedata
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.image import Image
from ..data.io import SUPPORTED_FORMATS, check_utf8_name, load
from ..data.sample import Sample
from ..errors import ImageReadError, ParameterError

__all__ = ["Case", "read_cases", "load_case", "case_seed", "case_id_from_path", "case_id_problem", "case_id_key"]

_IMAGE_DIRS = (("images", "labels"), ("imagesTr", "labelsTr"), ("imagesTs", "labelsTs"))


@dataclass(frozen=True)
class Case:
    """One case of a dataset.

    ``extra`` holds further input channels by sample name (``image_0001``,
    ``image_0002`` ..., channel 0 being ``image``), read as intensity images on
    the grid of ``image``; ``allowed_labels`` (from an nnU-Net ``dataset.json``)
    are the label values the label file may hold.
    """

    case_id: str
    image: Path
    label: Path | None = None
    target: Any = None
    extra: dict[str, Path] = field(default_factory=dict)
    allowed_labels: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        problem = case_id_problem(self.case_id)
        if problem:
            raise ParameterError(f"the case id {self.case_id!r} {problem}; rename the case", path=self.image)


#: Characters a case id may not hold: controls (NUL, newline, ...), path separators, and what Windows forbids.
_UNSAFE_ID = re.compile(r'[\x00-\x1f\x7f-\x9f/\\:*?"<>|]')
_RESERVED_IDS = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}
#: Longest case id in UTF-8 bytes: output names add suffixes (``_aug000_0000.nii.gz``) within 255 bytes.
MAX_CASE_ID_BYTES = 128


def case_id_problem(case_id: str) -> str | None:
    """Why ``case_id`` cannot name output files, or None when it can.

    A case id becomes part of output file names, so it must be one portable
    file name: no path separator, control character (NUL, newline, tab ...) or
    ``: * ? " < > |``; not empty, ``.`` or ``..``, not starting with a dot or
    space, not ending with a dot or space, not a reserved device name (``CON``,
    ``NUL``, ``COM1`` ...), at most 128 bytes in UTF-8.
    """
    if not isinstance(case_id, str) or not case_id:
        return "is empty"
    bad = _UNSAFE_ID.search(case_id)
    if bad:
        return (f"holds {bad.group()!r}, which cannot be part of a file name (allowed: letters, digits, spaces "
                "inside, and punctuation such as - _ . + ( ) but no path separator or control character)")
    if case_id[0] in ". " or case_id[-1] in ". ":
        return "starts or ends with a dot or a space, which would make a hidden or ambiguous file name"
    if case_id.split(".")[0].upper() in _RESERVED_IDS:
        return "is a reserved device name on Windows"
    if len(case_id.encode("utf-8")) > MAX_CASE_ID_BYTES:
        return f"is longer than {MAX_CASE_ID_BYTES} bytes"
    return None


def case_id_key(case_id: str) -> str:
    """The form in which two case ids collide as file names: Unicode NFC, case folded (macOS, Windows)."""
    return unicodedata.normalize("NFC", case_id).casefold()


def case_id_from_path(path: Path) -> str:
    """A case id from a file or folder name: the name without extensions or a ``_0000`` channel suffix."""
    name = path.name
    for ext in sorted(SUPPORTED_FORMATS, key=len, reverse=True):
        if name.lower().endswith(ext):
            name = name[: -len(ext)]
            break
    return re.sub(r"_\d{4}$", "", name) or "case"


def _is_image_file(p: Path) -> bool:
    if p.name.startswith("."):
        return False
    if p.is_dir():
        return True  # a DICOM series folder
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


def read_cases(source: str | Path) -> list[Case]:
    """The cases of a CSV file or a dataset folder, in a stable order.

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
    if src.is_file():
        found = _from_csv(src)
    else:
        found = [(c, f"case '{c.case_id}' (from {c.image})") for c in _from_folder(src)]
    seen: dict[str, str] = {}
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
    if not found:
        raise ParameterError("the dataset lists no cases", path=src)
    return [c for c, _ in found]


def _from_csv(path: Path) -> list[tuple[Case, str]]:
    """The CSV's cases, each with where it was read ("line N"); ``utf-8-sig`` accepts Excel's byte-order mark."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ParameterError(f"cannot read the CSV: {exc}", path=path) from exc
    if not rows or "image" not in rows[0]:
        raise ParameterError("the CSV needs an 'image' column (and optionally 'label', 'target', 'case_id')", path=path)
    base = path.parent
    out = []
    for i, row in enumerate(rows, start=2):
        if not (row.get("image") or "").strip():
            raise ParameterError(f"line {i}: empty 'image'", path=path)
        image = (base / row["image"].strip()).resolve()
        label = (base / row["label"].strip()).resolve() if (row.get("label") or "").strip() else None
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
            raise ParameterError(f"line {i}: the case id {cid!r} {problem}; rename the case", path=path)
        out.append((Case(cid, image, label, target), f"line {i}"))
    return out


def _from_folder(folder: Path) -> list[Case]:
    for img_dir, lab_dir in _IMAGE_DIRS:
        images = folder / img_dir
        if images.is_dir():
            labels = folder / lab_dir
            break
    else:
        raise ParameterError(
            "expected a sub-folder 'images/' (optionally 'labels/'), or 'imagesTr/' and 'labelsTr/'", path=folder
        )
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
    from .nnunet import cases_from_files  # channels (_0000, _0001 ...) and dataset.json

    return cases_from_files(folder, images, labels, files, label_files.values())


def load_case(case: Case, *, volume: int | None = None) -> Sample:
    """Read a case into a :class:`Sample` (image, label if any, target), checking geometry."""
    image = load(case.image, volume=volume).check_finite()
    images: dict[str, Image] = {"image": image}
    for name, path in case.extra.items():  # further input channels
        channel = load(path, volume=volume).check_finite()
        problem = image.grid.mismatch(channel.grid)
        if problem:
            from ..errors import GeometryError

            raise GeometryError(f"channel '{name}' is not on the grid of channel 0 {case.image} ({problem})", path=path)
        images[name] = channel
    if case.label is not None:
        label = load(case.label, label=True)
        problem = image.grid.mismatch(label.grid)
        if problem:
            from ..errors import GeometryError

            raise GeometryError(f"image and label are not on the same grid ({problem}); label: {case.label}", path=case.image)
        if case.allowed_labels is not None:
            bad = sorted(set(label.label_values().tolist()) - set(case.allowed_labels))
            if bad:
                raise ParameterError(
                    f"label value(s) {bad} are not in dataset.json's 'labels' (values {list(case.allowed_labels)}); "
                    "fix the label file or add the classes to dataset.json", path=case.label,
                )
        images["label"] = label
    return Sample(**images, target=case.target, metadata={"case_id": case.case_id})


def case_seed(seed: int, case_id: str, index: int) -> int:
    """A reproducible 31-bit seed for augmentation ``index`` of a case, independent of processing order."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, zlib.crc32(case_id.encode("utf-8")), int(index) & 0xFFFFFFFF])
    return int(ss.generate_state(1)[0] & 0x7FFFFFFF)
