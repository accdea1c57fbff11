"""Cases: what a dataset lists (image, optional label, optional target), their ids, and loading one.

A case id becomes part of output file names, so it is checked once, where the
dataset is read (:mod:`medaug.datasets.discover`): it must be one portable file
name (:func:`case_id_problem`) and unique as file names compare
(:func:`case_id_key`).
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..data.image import Image
from ..data.io import SUPPORTED_FORMATS, load
from ..data.sample import Sample
from ..errors import GeometryError, ParameterError

__all__ = ["Case", "load_case", "case_seed", "case_id_from_path", "case_id_problem", "case_id_key"]


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


def load_case(case: Case, *, volume: int | None = None) -> Sample:
    """Read a case into a :class:`Sample` (image, label if any, target), checking geometry."""
    image = load(case.image, volume=volume).check_finite()
    images: dict[str, Image] = {"image": image}
    for name, path in case.extra.items():  # further input channels
        channel = load(path, volume=volume).check_finite()
        problem = image.grid.mismatch(channel.grid)
        if problem:
            raise GeometryError(f"channel '{name}' is not on the grid of channel 0 {case.image} ({problem})", path=path)
        images[name] = channel
    if case.label is not None:
        label = load(case.label, label=True)
        problem = image.grid.mismatch(label.grid)
        if problem:
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
