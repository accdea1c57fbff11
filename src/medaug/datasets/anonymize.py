"""Pseudonymous case ids (``--anonymize-ids``), and a warning when case ids look like they name patients.

A case id comes from a file or folder name (or a CSV), and reaches output file
names, the manifest, a job's state files and preview titles: a DICOM folder
named ``DOE_JOHN_MRN0012345`` would be copied everywhere.  With
``anonymize_ids`` every case id is replaced, before any work, by a pseudonym
``case-<12 hex digits>``: a keyed hash (HMAC-SHA256) of the id under a secret
salt.  The same salt gives the same pseudonyms, in every job and command, so a
job resumes and the outputs of ``expand``, ``learn-deformations``, ``augment``
and ``preview`` agree; without the salt a pseudonym cannot be traced back by
trying likely names or record numbers.

The salt lives in a file (``--id-salt``; created with 32 random bytes when
missing, mode 0600) and the map from pseudonyms back to case ids and source
files in another (``--id-map``, CSV, mode 0600).  By default both sit next to
OUTPUT (``OUTPUT.id-salt``, ``OUTPUT.id-map.csv``), never inside it: the
output can be shared, the two files stay with whoever holds the data.  Source
paths are left out of the manifest; the job's state keeps the input path and
the files' paths only as salted digests.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import ParameterError
from .cases import Case

__all__ = ["Pseudonyms", "anonymize_cases", "key_files", "pseudonymize", "warn_if_identifying", "without_sources",
           "ANONYMIZE_HINT", "MAP_COLUMNS"]

#: How the warning about identifying case ids names the option.
ANONYMIZE_HINT = "use --anonymize-ids (Python: anonymize_ids=True) to replace them by pseudonyms"
_SALT_BYTES = 32
_MIN_SALT = 16
MAP_COLUMNS = ["case_id", "original_case_id", "source_image", "source_label"]


class Pseudonyms:
    """Case id -> ``case-<12 hex>``, a keyed hash of the id (stable for one salt).

    Examples
    --------
    >>> p = Pseudonyms(b"0123456789abcdef0123456789abcdef")
    >>> p("DOE_JOHN_MRN0012345") == p("DOE_JOHN_MRN0012345") != p("SMITH_ANNA")
    True
    >>> p("DOE_JOHN_MRN0012345")[:5]
    'case-'
    """

    def __init__(self, salt: bytes) -> None:
        self._salt = bytes(salt)

    @classmethod
    def from_file(cls, path: Path, *, create: bool) -> Pseudonyms:
        """The salt of ``path`` (its bytes, at least 16); a new random one written there when missing and ``create``.

        Raises
        ------
        ParameterError
            The file is missing (and may not be created), unreadable or too short.
        """
        try:
            salt = path.read_bytes().strip()
        except FileNotFoundError:
            if not create:
                raise ParameterError(
                    "the salt file of the pseudonyms does not exist, but the output folder holds a job made with "
                    "one: give the salt file of its first run (--id-salt), or use a new output folder", path=path,
                ) from None
            salt = secrets.token_hex(_SALT_BYTES).encode()
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(salt + b"\n")
        except OSError as exc:
            raise ParameterError(f"cannot read the salt file: {exc.strerror or exc}", path=path) from None
        if len(salt) < _MIN_SALT:
            raise ParameterError(f"the salt file holds {len(salt)} bytes; a salt needs at least {_MIN_SALT} "
                                 "(remove the file to have a new one made)", path=path)
        return cls(salt)

    def digest(self, text: str) -> str:
        """The keyed SHA-256 of ``text``, hex."""
        return hmac.new(self._salt, text.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()

    def __call__(self, case_id: str) -> str:
        return "case-" + self.digest("case id\0" + case_id)[:12]

    def check(self) -> str:
        """A digest of the salt that tells salts apart without revealing them (kept in the job's state)."""
        return self.digest("salt check")[:16]


def key_files(output: str | os.PathLike[str], salt: str | os.PathLike[str] | None,
              id_map: str | os.PathLike[str] | None, dataset: Path | None = None) -> tuple[Path, Path]:
    """The salt file and the id map of a job writing ``output``: as given, else ``OUTPUT.id-salt``, ``OUTPUT.id-map.csv``.

    Raises
    ------
    ParameterError
        Either lies inside ``output`` (which is meant to be shared), or the map
        inside the input ``dataset`` folder (medaug never writes there).
    """
    out = Path(output).resolve()
    paths = (Path(salt) if salt else out.with_name(out.name + ".id-salt"),
             Path(id_map) if id_map else out.with_name(out.name + ".id-map.csv"))
    for p, option in zip(paths, ("--id-salt", "--id-map")):
        if p.resolve().is_relative_to(out):
            raise ParameterError(f"{option} {p} lies inside the output {out}, which would carry the key back to "
                                 "the patients; keep it next to the output or elsewhere", path=p)
    if dataset is not None and paths[1].resolve().is_relative_to(dataset):
        raise ParameterError(f"--id-map {paths[1]} lies inside the input {dataset}; medaug never writes into its "
                             "input", path=paths[1])
    return paths


def pseudonymize(cases: list[Case], pseudonyms: Pseudonyms) -> tuple[list[Case], list[dict[str, str]]]:
    """The cases under their pseudonyms, and the rows of the map back (:data:`MAP_COLUMNS`).

    Raises
    ------
    ParameterError
        Two case ids with one pseudonym (a 48-bit hash: never seen in practice).
    """
    out, rows, seen = [], [], {}
    for case in cases:
        alias = pseudonyms(case.case_id)
        if alias in seen:
            raise ParameterError(f"cases {seen[alias]!r} and {case.case_id!r} have the same pseudonym {alias}; "
                                 "use another salt file")
        seen[alias] = case.case_id
        out.append(replace(case, case_id=alias))
        rows.append({"case_id": alias, "original_case_id": case.case_id, "source_image": str(case.image),
                     "source_label": str(case.label) if case.label else ""})
    return out, rows


def anonymize_cases(cases: list[Case], output: str | os.PathLike[str], *, salt: str | os.PathLike[str] | None = None,
                    id_map: str | os.PathLike[str] | None = None, resuming: bool = False,
                    dataset: Path | None = None) -> tuple[list[Case], Pseudonyms]:
    """The cases under their pseudonyms, the map back written (mode 0600): what every command does with ``--anonymize-ids``.

    ``output`` is the folder (or file) the command writes; the salt file and the
    map default to its neighbours (:func:`key_files`).  ``resuming``: the output
    holds a job already, so a missing salt file is an error, not made anew.
    """
    from .writing import write_csv_atomic

    salt_path, map_path = key_files(output, salt, id_map, dataset)
    pseudonyms = Pseudonyms.from_file(salt_path, create=not resuming)
    renamed, rows = pseudonymize(cases, pseudonyms)
    write_csv_atomic(map_path, rows, MAP_COLUMNS, private=True)
    return renamed, pseudonyms


def without_sources(row: dict[str, Any]) -> dict[str, Any]:
    """A manifest row with its source paths left out (they hold the case ids the pseudonyms replace)."""
    return {**row, "source_image": "", "source_label": ""}


# ---------------------------------------------------------------- does a name look identifying?
_DATE = re.compile(r"(?<!\d)((19|20)\d\d[-_.]?(0[1-9]|1[0-2])[-_.]?(0[1-9]|[12]\d|3[01])"
                   r"|(0[1-9]|[12]\d|3[01])[-_.](0[1-9]|1[0-2])[-_.](19|20)\d\d)(?!\d)")
_RECORD = re.compile(r"(?i)(?<![a-z])(mrn|pid|patient|accession|acc)[-_ #]?\d|(?<!\d)\d{7,}(?!\d)")
_PERSON = re.compile(r"[A-Za-z]{2,}\^[A-Za-z]{2,}")  # DICOM person name: FAMILY^GIVEN
_CAPS_WORDS = re.compile(r"(?<![A-Za-z])([A-Z]{3,})[_, -]+([A-Z]{3,})(?![A-Za-z])")
#: Upper-case words of imaging data sets that are not names.
_NOT_NAMES = frozenset(
    "CASE IMAGE IMAGES LABEL LABELS SEG MASK SCAN DATA DATASET SERIES STUDY SLICE VOLUME TRAIN TEST TRAINING TESTING "
    "VALIDATION BRAIN HEAD NECK CHEST LUNG LUNGS LIVER KIDNEY HEART SPINE KNEE HIP PELVIS ABDOMEN BREAST PROSTATE "
    "TUMOR TUMOUR AXIAL SAGITTAL CORONAL FLAIR DWI ADC MRI PET CBCT LEFT RIGHT PRE POST CONTRAST ARTERIAL VENOUS "
    "NATIVE BONE SOFT TISSUE DICOM NIFTI RAW ORIG AUG BRATS LIDC IDRI KITS ACDC".split())


def _identifying(text: str) -> str | None:
    """What in ``text`` looks like it identifies a patient ("a date", ...), or None."""
    if _DATE.search(text):
        return "a date"
    if _RECORD.search(text):
        return "a record number"
    if _PERSON.search(text) or any(a not in _NOT_NAMES and b not in _NOT_NAMES for a, b in _CAPS_WORDS.findall(text)):
        return "a name"
    return None


def warn_if_identifying(cases: list[Case], root: str | os.PathLike[str]) -> None:
    """Warn once when a case id, or a file name under ``root``, looks like it holds a name, a record number or a date.

    Only the part of a path below ``root`` (the dataset) is looked at: the
    folders above it are the user's, not the patients'.
    """
    base = Path(root)
    for case in cases:
        names = [case.case_id]
        for path in (case.image, case.label, *case.channel_files):
            if path is not None:
                p = Path(path)
                names.append(str(p.relative_to(base)) if p.is_relative_to(base) else p.name)
        for name in names:
            kind = _identifying(name)
            if kind:
                what = "its id" if name == case.case_id else f"its file {name!r}"
                warnings.warn(
                    f"case {case.case_id!r}: {what} looks like it holds {kind}, and case ids reach output file names, "
                    f"the manifest and preview titles; {ANONYMIZE_HINT} (one warning for the {len(cases)} case(s))",
                    stacklevel=3,
                )
                return
