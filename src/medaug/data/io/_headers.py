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

import math
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

from ...errors import ImageReadError, InvalidImageError
from ._paths import file_kind

__all__ = ["check_data_files", "check_metaimage_geometry", "check_metaimage_size", "ALLOW_EXTERNAL_DATA"]

#: Environment variable that lets a header name data files outside its own folder.
ALLOW_EXTERNAL_DATA = "MEDAUG_ALLOW_EXTERNAL_DATA"

_HEADER_LIMIT = 1 << 20  # a text header is a few hundred bytes; read at most 1 MiB of it
_MAX_FILES = 100_000  # data files one header may name (a list or a pattern)
_PATTERN = re.compile(r"^(?P<fmt>\S*%\S*)\s+(?P<lo>-?\d+)\s+(?P<hi>-?\d+)\s+(?P<step>-?\d+)(?:\s+\d+)?\s*$")


#: Bytes per value of the MetaImage element types whose size is fixed (MET_LONG varies with the platform).
_MET_SIZES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
              "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4, "MET_DOUBLE": 8}


def _read_head(p: Path) -> bytes:
    try:
        with open(p, "rb") as f:
            return f.read(_HEADER_LIMIT)
    except OSError as err:
        raise ImageReadError(f"cannot be opened: {err.strerror or err}", path=str(p)) from None


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
    head = _read_head(p)
    try:
        names = list(_metaimage_names(head) if fmt == "MetaImage" else _nrrd_names(head))
    except ImageReadError as err:
        err.path = where
        raise
    folder = p.parent.resolve()
    external = os.environ.get(ALLOW_EXTERNAL_DATA) == "1"
    for name in names:
        _check_one(p, folder, name, external, where)


def check_metaimage_size(p: Path) -> None:
    """Refuse a MetaImage whose voxel data (``LOCAL``, detached, listed or numbered files) is shorter than its header describes.

    ITK reports a cut file only as "File cannot be read".  The data needed are
    DimSize x ElementNumberOfChannels x the element size (or
    ``CompressedDataSize`` for compressed data), from the end of the
    ``ElementDataFile`` line (``LOCAL``) or from ``HeaderSize`` in the data
    file.  A list or numbered pattern of files must name as many files as
    DimSize needs, each long enough.  Headers this check cannot size (ASCII
    data, platform-sized types) are left to ITK.

    Raises
    ------
    ImageReadError
        Naming the header, the bytes described and the bytes present.
    """
    head = _read_head(p)
    found = _metaimage_fields(head)
    if found is None:
        return  # no data file line: ITK reports the broken header
    fields, start = {k.lower(): v for k, (_, v) in found[0].items()}, found[1]
    try:
        dims = [int(v) for v in fields.get("dimsize", "").split()]
        channels = int(fields.get("elementnumberofchannels", "1"))
        header_size = int(fields.get("headersize", "0"))
    except ValueError:
        return
    compressed = fields.get("compresseddata", "false").lower() == "true"
    element = _MET_SIZES.get(fields.get("elementtype", "").upper())
    name = fields["elementdatafile"]
    tokens = name.split()
    if dims and tokens and (tokens[0].upper() == "LIST" or _pattern(name) is not None):
        _check_file_list(p, head, dims, channels, element, header_size, compressed, tokens)
        return
    if (element is None or not dims or fields.get("binarydata", "true").lower() != "true" or header_size < 0
            or (compressed and "compresseddatasize" not in fields)):
        return
    needed = int(fields["compresseddatasize"]) if compressed else math.prod(dims) * channels * element
    what = f"{'compressed ' if compressed else ''}voxel data"
    if name.upper() == "LOCAL":
        present, holder = p.stat().st_size - start, "the file"
    else:
        data = p.parent / name
        try:
            present, holder = data.stat().st_size - header_size, f"its data file {name!r}"
        except OSError:
            return  # missing: ITK's read reports it
    if present < needed:
        raise ImageReadError(
            f"is truncated: its header describes {needed} bytes of {what} (DimSize {' '.join(map(str, dims))}, "
            f"{fields['elementtype']}) but {holder} holds only {max(present, 0)} ({100 * max(present, 0) / needed:.0f}%); "
            "copy or export the image again",
            path=str(p),
        )


def _metaimage_fields(head: bytes) -> tuple[dict[str, tuple[str, str]], int] | None:
    """The fields of a MetaImage header up to ``ElementDataFile`` (lower-case key -> (key as written, value)) and
    the byte where the data follow that line; None when no ``ElementDataFile`` line ends the header."""
    fields: dict[str, tuple[str, str]] = {}
    start = 0
    for raw in head.split(b"\n"):
        start += len(raw) + 1
        key, sep, value = raw.decode("latin-1").partition("=")
        if sep:
            fields[key.strip().lower()] = (key.strip(), value.strip())
        if key.strip().lower() == "elementdatafile":
            return fields, start
    return None


def check_metaimage_geometry(p: Path) -> None:
    """Refuse a MetaImage header whose ``DimSize``, ``ElementSpacing`` or origin ITK would misread.

    ITK's MetaIO reads ``inf`` or a word as 0 (then calls the spacing "zero-valued"),
    wraps a negative ``DimSize`` into billions of voxels (then the image "does not
    fit in memory"), takes the absolute value of a negative spacing without a
    word, and reads an infinite ``Offset`` as 0.  Each is refused here, naming the
    field: a size is a whole number of at least 1, a spacing a finite number
    above 0 (a flip belongs in ``TransformMatrix``; ITK images have positive
    spacing), an origin finite.

    Raises
    ------
    InvalidImageError
        Naming the header (the path), the field and its value.
    """
    found = _metaimage_fields(_read_head(p))
    if found is None:
        return  # no data file line: ITK reports the broken header
    fields = found[0]
    for key in ("dimsize", "elementspacing", "offset", "position", "origin"):
        if key not in fields:
            continue
        name, text = fields[key]
        why = _geometry_problem(key, text.split())
        if why:
            shown = text if len(text) <= 80 else text[:77] + "..."
            raise InvalidImageError(f"has an invalid {name} in its MetaImage header ({name} = {shown}): {why}; fix "
                                    "the header or export the image again", path=str(p))


def _geometry_problem(key: str, tokens: list[str]) -> str | None:
    """What is wrong with the values of a geometry field, or None."""
    if not tokens:
        return "it holds no value"
    if key == "dimsize":
        if not all(re.fullmatch(r"[+-]?\d+", t) for t in tokens):
            return "a size must be a whole number of voxels"
        sizes = [int(t) for t in tokens]
        if any(s < 0 for s in sizes):
            return "a size is negative"
        return "a size is 0, the image would be empty" if 0 in sizes else None
    try:
        values = [float(t) for t in tokens]
    except ValueError:
        return "a value is not a number"
    if not all(math.isfinite(v) for v in values):
        return "a value is not finite"
    if key == "elementspacing":
        if any(v < 0 for v in values):
            return ("a spacing is negative: ITK images have positive spacing (a flip belongs in TransformMatrix, "
                    "with the spacing positive)")
        if 0.0 in values:
            return "a spacing is 0"
    return None


def _check_file_list(p: Path, head: bytes, dims: list[int], channels: int, element: int | None, header_size: int,
                     compressed: bool, tokens: list[str]) -> None:
    """A list (``LIST [nD]``) or numbered pattern of data files: as many files as DimSize needs, each long enough.

    Each file holds the first ``n`` dimensions (default NDims - 1: one slice per
    file), so DimSize needs ``prod(DimSize[n:])`` files.  ITK reads fewer files
    without a word and leaves the rest of the image as uninitialised memory.
    """
    where = str(p)
    listed = tokens[0].upper() == "LIST"
    files = list(_metaimage_names(head))
    if not listed and len(tokens) > 4:  # ITK mis-reads this form (measured: uninitialised memory in every slice)
        raise ImageReadError(
            f"names its data files by a numbered pattern with a file dimension ({' '.join(tokens)!r}), which "
            "medaug cannot read safely; drop the last number (one slice per file) or list the files (LIST)",
            path=where,
        )
    size_token = tokens[1] if listed and len(tokens) > 1 else None
    per_file = len(dims) - 1
    if size_token is not None:
        m = re.fullmatch(r"(\d+)(?:D)?", size_token, flags=re.IGNORECASE)
        if m is None or not 1 <= int(m[1]) <= len(dims):
            raise ImageReadError(f"gives {size_token!r} as the dimension of its data files; expected 1D to "
                                 f"{len(dims)}D; the header is corrupt", path=where)
        per_file = int(m[1])
    needed = math.prod(dims[per_file:])
    if len(files) != needed:
        kind = "list" if listed else "pattern"
        raise ImageReadError(
            f"names {len(files)} data file(s) in its {kind}, but DimSize {' '.join(map(str, dims))} with "
            f"{per_file}D files needs {needed}; fix the ElementDataFile {kind} or export the image again",
            path=where,
        )
    if element is None or compressed or header_size < 0:
        return
    block = math.prod(dims[:per_file]) * channels * element + header_size
    for name in files:
        try:
            present = (p.parent / name).stat().st_size
        except OSError:
            raise ImageReadError(f"names the data file {name!r}, which does not exist beside the header",
                                 path=where) from None
        if present < block:
            raise ImageReadError(
                f"is truncated: its data file {name!r} holds {present} bytes, each of its {per_file}D data files "
                f"needs {block}; copy or export the image again",
                path=where,
            )


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
