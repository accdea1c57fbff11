"""Text headers that name other files: MetaImage ``ElementDataFile`` and NRRD ``data file``.

A MetaImage (``.mha``, ``.mhd``) or NRRD (``.nrrd``, ``.nhdr``) header may
name its voxel data as a file name, a list of files or a numbered pattern,
relative to the header's folder or absolute.  SimpleITK follows any of them,
so a header from elsewhere could make medaug read ``/etc/shadow`` or
``/proc/self/environ`` into an output image.  Before SimpleITK sees such a
header, every data file it names must resolve (symbolic links followed) inside
the header's own folder and be a regular file.  Setting the environment
variable ``MEDAUG_ALLOW_EXTERNAL_DATA=1`` lifts the folder rule (never the
regular-file rule) for trusted headers whose data lie elsewhere.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

from ...errors import ImageReadError
from ._paths import file_kind

__all__ = ["check_data_files", "ALLOW_EXTERNAL_DATA"]

#: Environment variable that lets a header name data files outside its own folder.
ALLOW_EXTERNAL_DATA = "MEDAUG_ALLOW_EXTERNAL_DATA"

_HEADER_LIMIT = 1 << 20  # a text header is a few hundred bytes; read at most 1 MiB of it
_MAX_FILES = 100_000  # data files one header may name (a list or a pattern)
_PATTERN = re.compile(r"^(?P<fmt>\S*%\S*)\s+(?P<lo>-?\d+)\s+(?P<hi>-?\d+)\s+(?P<step>-?\d+)(?:\s+\d+)?\s*$")


def check_data_files(p: Path, fmt: str) -> None:
    """Refuse a MetaImage or NRRD header naming a data file outside its folder, or not a regular file.

    Parameters
    ----------
    p : Path
        The header (``.mha``, ``.mhd``, ``.nrrd`` or ``.nhdr``).
    fmt : str
        ``"MetaImage"`` or ``"NRRD"``.

    Raises
    ------
    ImageReadError
        Naming the header and the data file, with what to do.
    """
    where = str(p)
    try:
        with open(p, "rb") as f:
            head = f.read(_HEADER_LIMIT)
    except OSError as err:
        raise ImageReadError(f"cannot be opened: {err.strerror or err}", path=where) from None
    try:
        names = list(_metaimage_names(head) if fmt == "MetaImage" else _nrrd_names(head))
    except ImageReadError as err:
        err.path = where
        raise
    folder = p.parent.resolve()
    external = os.environ.get(ALLOW_EXTERNAL_DATA) == "1"
    for name in names:
        _check_one(p, folder, name, external, where)


def _check_one(header: Path, folder: Path, name: str, external: bool, where: str) -> None:
    if "\x00" in name:
        raise ImageReadError("names a data file with a NUL character; the header is corrupt", path=where)
    target = Path(name) if os.path.isabs(name) else header.parent / name
    resolved = target.resolve()
    if not external and not resolved.is_relative_to(folder):
        raise ImageReadError(
            f"names the data file {name!r}, which lies outside the header's folder ({resolved}); medaug reads "
            f"data files only beside their header: move the data file next to it, or set {ALLOW_EXTERNAL_DATA}=1 "
            "if you trust this header",
            path=where,
        )
    try:
        mode = os.stat(resolved).st_mode
    except OSError:
        return  # missing: SimpleITK's read reports it, naming the header
    if not stat.S_ISREG(mode):
        raise ImageReadError(
            f"names the data file {name!r}, which is not a regular file ({file_kind(mode)}); point the header at the "
            "file that holds the voxels",
            path=where,
        )


def _lines(head: bytes) -> Iterator[str]:
    for raw in head.split(b"\n"):
        yield raw.decode("latin-1").rstrip("\r")


def _metaimage_names(head: bytes) -> Iterator[str]:
    """The data files an ``ElementDataFile`` field names (none for ``LOCAL``)."""
    lines = _lines(head)
    for line in lines:
        key, sep, value = line.partition("=")
        if not sep or key.strip().lower() != "elementdatafile":
            continue
        value = value.strip()
        if value.upper() == "LOCAL" or not value:
            return
        if value.split()[0].upper() == "LIST":
            yield from _bounded(ln.strip() for ln in lines if ln.strip())
            return
        yield from _pattern(value) or [value]
        return


def _nrrd_names(head: bytes) -> Iterator[str]:
    """The data files a ``data file`` (or ``datafile``) field names; none for attached data."""
    lines = _lines(head)
    for line in lines:
        if not line.strip():
            return  # end of the header: attached data follow
        key, sep, value = line.partition(":")
        if not sep or key.strip().lower() not in ("data file", "datafile"):
            continue
        value = value.lstrip("=").strip()
        if value.split()[:1] == ["LIST"]:
            yield from _bounded(ln.strip() for ln in lines if ln.strip())
            return
        yield from _pattern(value) or [value]
        return


def _pattern(value: str) -> list[str] | None:
    """File names of a numbered pattern ``FORMAT MIN MAX STEP [N]``; None when ``value`` is one file name."""
    m = _PATTERN.match(value)
    if m is None:
        return None
    lo, hi, step = int(m["lo"]), int(m["hi"]), int(m["step"])
    if step == 0 or (hi - lo) // step + 1 > _MAX_FILES:
        raise ImageReadError(f"names too many data files ({value!r}); the header is corrupt")
    try:
        return [m["fmt"] % i for i in range(lo, hi + (1 if step > 0 else -1), step)]
    except (TypeError, ValueError, OverflowError):
        return [m["fmt"]]  # not a numbered pattern: checked as one name


def _bounded(names: Iterator[str]) -> Iterator[str]:
    for i, name in enumerate(names):
        if i >= _MAX_FILES:
            raise ImageReadError(f"names more than {_MAX_FILES} data files; the header is corrupt")
        yield name
