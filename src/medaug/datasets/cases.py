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
from dataclasses import dataclass
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

    Attributes
    ----------
    case_id : str
        A safe file name (:func:`case_id_problem`), unique in its dataset.
    image : Path
        The image file (or DICOM folder); a 4D NIfTI or multi-component file
        holds several channels itself.
    label : Path or None
    target : any
        A class target (CSV ``target`` column).
    channel_files : tuple of Path
        Further input channels stored as files of their own (nnU-Net's
        ``CASE_0001``, ``CASE_0002`` ...; channel 0 is ``image``), on the grid of
        ``image``.  :func:`load_case` stacks them into one multi-channel image.
    allowed_labels : tuple of int, optional
        The label values the label file may hold (from ``dataset.json``).
    channel_names : tuple of str, optional
        A name per channel (``dataset.json``'s ``modality`` / ``channel_names``).
    """

    case_id: str
    image: Path
    label: Path | None = None
    target: Any = None
    channel_files: tuple[Path, ...] = ()
    allowed_labels: tuple[int, ...] | None = None
    channel_names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        problem = case_id_problem(self.case_id)
        if problem:
            raise ParameterError(f"the case id {self.case_id!r} {problem}; rename the case", path=self.image)

    @property
    def image_files(self) -> tuple[Path, ...]:
        """Every file holding input channels: ``image`` and the ``channel_files``."""
        return (self.image, *self.channel_files)


#: Characters a case id may not hold: controls (NUL, newline, ...), path separators, and what Windows forbids.
_UNSAFE_ID = re.compile(r'[\x00-\x1f\x7f-\x9f/\\:*?"<>|]')
#: Unicode categories a case id may not hold: controls, invisible formatting (right-to-left overrides, zero-width
#: spaces, byte-order marks), line and paragraph separators, surrogates, private use, unassigned.
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}
_RESERVED_IDS = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$",
                 *(f"{dev}{i}" for dev in ("COM", "LPT") for i in (*"0123456789", "\u00b9", "\u00b2", "\u00b3"))}
#: Longest case id in UTF-8 bytes: output names add suffixes (``_aug000_0000.nii.gz``) within 255 bytes.
MAX_CASE_ID_BYTES = 128


def case_id_problem(case_id: str) -> str | None:
    """Why ``case_id`` cannot name output files, or None when it can.

    A case id becomes part of output file names, so it must be one portable
    file name: no path separator, control character (NUL, newline, tab ...),
    invisible formatting character (right-to-left override, zero-width space,
    line separator ...) or ``: * ? " < > |``; not empty, ``.`` or ``..``, not
    starting with a dot or space, not ending with a dot or space, not a reserved
    device name (``CON``, ``NUL``, ``COM1``, ``CONIN$`` ...), at most 128 bytes
    in UTF-8.
    """
    if not isinstance(case_id, str) or not case_id:
        return "is empty"
    bad = _UNSAFE_ID.search(case_id)
    invisible = next((c for c in case_id if unicodedata.category(c) in _UNSAFE_CATEGORIES), None)
    if bad or invisible:
        return (f"holds {bad.group() if bad else invisible!r}, which cannot be part of a file name (allowed: "
                "letters, digits, spaces inside, and punctuation such as - _ . + ( ) but no path separator, control "
                "or invisible formatting character)")
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


def load_case(case: Case, *, volume: int | None = None, channels: str | None = None) -> Sample:
    """Read a case into a :class:`Sample`: ``image`` (channels stacked), ``label`` if any, the target.

    Channels stored in separate files are stacked into one multi-channel image
    (their source dtypes are kept in ``metadata["channel_dtypes"]``, so that a
    writer can give each file back its type); a 4D file is read as channels,
    colour pictures as R, G, B with ``channels="rgb"`` (see :func:`~medaug.load`).

    Raises
    ------
    GeometryError
        A channel or the label is not on the grid of the image.
    ParameterError
        The label holds a value ``dataset.json`` does not list, or the channel
        names do not match the channels.
    """
    first = load(case.image, volume=volume, channels=channels).check_finite()
    metadata: dict[str, Any] = {"case_id": case.case_id}
    if case.channel_files:
        parts = [first]
        for k, path in enumerate(case.channel_files, start=1):
            channel = load(path, volume=volume, channels=channels).check_finite()
            problem = first.grid.mismatch(channel.grid)
            if problem or channel.channel_axis:
                raise GeometryError(f"channel {k} is not on the grid of channel 0 {case.image} "
                                    f"({problem or 'it has channels itself'})", path=path)
            parts.append(channel)
        metadata["channel_dtypes"] = [str(p.dtype) for p in parts]
        dtype = np.result_type(*[p.dtype for p in parts])
        image = Image.stack([p.with_data(np.asarray(p.array, dtype)) for p in parts], names=case.channel_names)
    else:
        image = first
        if case.channel_names is not None:
            if len(case.channel_names) != image.channels:
                raise ParameterError(
                    f"dataset.json names {len(case.channel_names)} channel(s) {list(case.channel_names)} but the image "
                    f"has {image.channels}", path=case.image,
                )
            if image.channel_axis:
                image = Image(image.data, grid=image.grid, path=image.path, channel_names=case.channel_names,
                              metadata=image.metadata)
    images: dict[str, Image] = {"image": image}
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
    return Sample(**images, target=case.target, metadata=metadata)


#: The largest seed of a job (``--seed``): seeds are 32-bit, so that no two seeds give the same outputs.
SEED_MAX = 2**32 - 1


def check_seed(seed: Any) -> int:
    """``seed`` as an int in 0..:data:`SEED_MAX`, else a :class:`ParameterError` (a wider seed would wrap around)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) <= SEED_MAX:
        raise ParameterError(f"the seed must be an integer in 0..{SEED_MAX}, got {seed!r}")
    return int(seed)


def case_seed(seed: int, case_id: str, index: int) -> int:
    """A reproducible 31-bit seed for augmentation ``index`` of a case, independent of processing order."""
    ss = np.random.SeedSequence([check_seed(seed), zlib.crc32(case_id.encode("utf-8")), int(index) & 0xFFFFFFFF])
    return int(ss.generate_state(1)[0] & 0x7FFFFFFF)
