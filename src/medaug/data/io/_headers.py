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

The header is read here as its reader reads it, not as a tidy header looks:
MetaIO (ITK's MetaImage reader) takes ``=`` or ``:`` after a field name,
compares names as C strings (case-sensitive, cut at a NUL), skips any run of
``=``, ``:`` and blanks before a value, treats any value starting with
``LIST`` as a list, any value holding ``%`` as a numbered pattern (with default
numbers) and, when a data file is missing, opens it with ``.gz`` or ``.Z``
appended; teem (ITK's NRRD reader) ends lines at ``\\r`` as well as ``\\n``,
reads ``data file: -`` from standard input, and takes field names in any
case.  Whatever these readers could take two ways (a NUL or a carriage return
inside a MetaImage line, a line without a separator, an empty value just before
``ElementDataFile``, a ``%`` that is not one plain ``%d``), and headers longer
than :data:`_HEADER_LIMIT`, are refused: a header written by any imaging tool
has none of them.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

from ...errors import ImageReadError, InvalidImageError
from ._paths import file_kind

__all__ = ["check_data_files", "check_metaimage_geometry", "check_metaimage_size", "ALLOW_EXTERNAL_DATA"]

#: Environment variable that lets a header name data files outside its own folder.
ALLOW_EXTERNAL_DATA = "MEDAUG_ALLOW_EXTERNAL_DATA"

_HEADER_LIMIT = 1 << 20  # a text header is a few hundred bytes; longer ones are refused
_LIST_LIMIT = 16 << 20  # a header with the list of its data files (one name per line)
_MAX_FILES = 100_000  # data files one header may name (a list or a pattern)
_METAIO_LINE = 500  # MetaIO reads a header line into a buffer of 500 bytes
#: A printf format that takes exactly one int (what MetaIO and teem give it), as C and Python format it alike.
_ONE_INT_FORMAT = re.compile(r"(?:[^%]|%%)*%[-+ 0]*\d{0,3}[di](?:[^%]|%%)*")
#: teem takes a data file name as a pattern when it holds a %d.
_ONE_D_FORMAT = re.compile(r"(?:[^%]|%%)*%[-+ 0]*\d{0,3}d(?:[^%]|%%)*")
#: What MetaIO cuts from the end of a listed file name: blanks and non-printable bytes.
_METAIO_UNPRINTABLE = "".join(chr(c) for c in (*range(33), *range(127, 256)))
_WHITESPACE = " \t\n\v\f\r"


#: Bytes per value of the MetaImage element types whose size is fixed (MET_LONG varies with the platform).
_MET_SIZES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
              "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4, "MET_DOUBLE": 8}


class _DataFiles(NamedTuple):
    """What a header says about its voxel data."""

    fields: dict[str, str]  # MetaImage: the fields before ElementDataFile, names as written
    value: str | None  # the data-file field's value; None when the header has none
    names: list[str]  # the files the reader opens, as named (relative to the header's folder, or absolute)
    fallbacks: list[str]  # other files the reader may open for a name (MetaIO: NAME.gz, NAME.Z; NAME as written)
    data_start: int  # MetaImage LOCAL: the byte where the voxels start


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
        Naming the header and the data file, with what to do; or naming the
        header when it is ambiguous or longer than its readers would ever need.
    """
    where = str(p)
    data = _metaimage(p) if fmt == "MetaImage" else _nrrd(p)
    folder = p.parent.resolve()
    external = os.environ.get(ALLOW_EXTERNAL_DATA) == "1"
    for name in data.names:
        _check_one(p, folder, name, external, where)
    for name in data.fallbacks:
        if os.path.lexists(_beside(p, name)):
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
    data = _metaimage(p)
    fields, name = data.fields, data.value
    if name is None:
        return  # no data file line: ITK reports the broken header
    try:
        dims = _dims(fields)
        channels = int(fields.get("ElementNumberOfChannels", "1"))
        header_size = int(fields.get("HeaderSize", "0"))
    except ValueError:
        return
    compressed = fields.get("CompressedData", "false").lower() == "true"
    element = _MET_SIZES.get(fields.get("ElementType", "").upper())
    if dims and (name.startswith("LIST") or (not _is_local(name) and "%" in name)):
        _check_file_list(p, name, data.names, dims, channels, element, header_size, compressed)
        return
    if (element is None or not dims or fields.get("BinaryData", "true").lower() != "true" or header_size < 0
            or (compressed and "CompressedDataSize" not in fields)):
        return
    try:
        needed = int(fields["CompressedDataSize"]) if compressed else math.prod(dims) * channels * element
    except ValueError:
        return
    what = f"{'compressed ' if compressed else ''}voxel data"
    if _is_local(name):
        present, holder = p.stat().st_size - data.data_start, "the file"
    else:
        try:
            present, holder = _beside(p, name).stat().st_size - header_size, f"its data file {name!r}"
        except OSError:
            return  # missing: ITK's read reports it
    if present < needed:
        raise ImageReadError(
            f"is truncated: its header describes {needed} bytes of {what} (DimSize {' '.join(map(str, dims))}, "
            f"{fields['ElementType']}) but {holder} holds only {max(present, 0)} ({100 * max(present, 0) / needed:.0f}%); "
            "copy or export the image again",
            path=str(p),
        )


def check_metaimage_geometry(p: Path) -> None:
    """Refuse a MetaImage header whose ``DimSize``, ``ElementSpacing`` or origin ITK would misread.

    ITK's MetaIO reads ``inf`` or a word as 0 (then calls the spacing "zero-valued"),
    wraps a negative ``DimSize`` into billions of voxels (then the image "does not
    fit in memory"), takes the absolute value of a negative spacing without a
    word, and reads an infinite ``Offset`` as 0.  Each is refused here, naming the
    field: a size is a whole number of at least 1, a spacing a finite number
    above 0 (a flip belongs in ``TransformMatrix``; ITK images have positive
    spacing), an origin finite.  The fields are those MetaIO reads (names as
    written, compared as MetaIO compares them: :func:`_metaimage`).

    Raises
    ------
    InvalidImageError
        Naming the header (the path), the field and its value.
    """
    fields = _metaimage(p).fields
    for name in ("DimSize", "ElementSpacing", "Offset", "Position", "Origin"):
        if name not in fields:
            continue
        text = fields[name]
        why = _geometry_problem(name, text.split())
        if why:
            shown = text if len(text) <= 80 else text[:77] + "..."
            raise InvalidImageError(f"has an invalid {name} in its MetaImage header ({name} = {shown}): {why}; fix "
                                    "the header or export the image again", path=str(p))


def _geometry_problem(name: str, tokens: list[str]) -> str | None:
    """What is wrong with the values of a geometry field, or None."""
    if not tokens:
        return "it holds no value"
    if name == "DimSize":
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
    if name == "ElementSpacing":
        if any(v < 0 for v in values):
            return ("a spacing is negative: ITK images have positive spacing (a flip belongs in TransformMatrix, "
                    "with the spacing positive)")
        if 0.0 in values:
            return "a spacing is 0"
    return None


def _check_file_list(p: Path, value: str, files: list[str], dims: list[int], channels: int, element: int | None,
                     header_size: int, compressed: bool) -> None:
    """A list (``LIST [nD]``) or numbered pattern of data files: as many files as DimSize needs, each long enough.

    Each file holds the first ``n`` dimensions (default NDims - 1: one slice per
    file), so DimSize needs ``prod(DimSize[n:])`` files.  ITK reads fewer files
    without a word and leaves the rest of the image as uninitialised memory.
    """
    where = str(p)
    tokens = value.split()
    listed = value.startswith("LIST")
    per_file = len(dims) - 1
    if listed and len(tokens) > 1:
        m = re.fullmatch(r"(\d+)(?:D)?", tokens[1], flags=re.IGNORECASE)
        if m is None or not 1 <= int(m[1]) < len(dims):  # MetaIO sizes NDims-D files wrong: uninitialised memory
            raise ImageReadError(f"gives {tokens[1]!r} as the dimension of its data files; expected 1D to "
                                 f"{len(dims) - 1}D (one file of the whole image is 'ElementDataFile = NAME'); the "
                                 "header is corrupt", path=where)
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
            present = _beside(p, name).stat().st_size
        except OSError:
            raise ImageReadError(f"names the data file {name!r}, which does not exist beside the header",
                                 path=where) from None
        if present < block:
            raise ImageReadError(
                f"is truncated: its data file {name!r} holds {present} bytes, each of its {per_file}D data files "
                f"needs {block}; copy or export the image again",
                path=where,
            )


def _beside(header: Path, name: str) -> Path:
    """Where the reader looks for a data file: as named when absolute, else in the header's folder."""
    return Path(name) if os.path.isabs(name) else header.parent / name


def _check_one(header: Path, folder: Path, name: str, external: bool, where: str) -> None:
    if "\x00" in name:
        raise ImageReadError("names a data file with a NUL character; the header is corrupt", path=where)
    resolved = _beside(header, name).resolve()
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


# ------------------------------------------------------------------ reading headers as their readers do
def _lines(f: BinaryIO, ends: re.Pattern[bytes], limit: int, where: str, what: str) -> Iterator[tuple[bytes, int]]:
    """The lines of ``f`` (without their ends) and the byte offset after each, refused past ``limit`` bytes."""
    buf, base, eof = b"", 0, False
    while True:
        m = ends.search(buf)
        if m is not None and not (m.end() == len(buf) and buf.endswith(b"\r") and not eof):
            if base + m.end() > limit:
                break
            yield buf[: m.start()], base + m.end()
            base += m.end()
            buf = buf[m.end():]
            continue
        if base + len(buf) > limit:
            break
        if eof:
            if buf:
                yield buf, base + len(buf)
            return
            break
        chunk = f.read(1 << 16)
        eof = not chunk
        buf += chunk
    raise ImageReadError(f"has a {what} longer than {limit >> 20} MiB; the header is corrupt or not really a header",
                         path=where)


def _metaimage(p: Path) -> _DataFiles:
    """The MetaImage header's fields up to ``ElementDataFile`` and the files MetaIO would open for it.

    MetaIO reads ``name <= or :> value`` fields up to the first field named
    exactly ``ElementDataFile`` (where the voxels of a ``LOCAL`` image start).
    """
    where = str(p)
    fields: dict[str, str] = {}
    try:
        with open(p, "rb") as f:
            lines = _lines(f, re.compile(rb"\n"), _HEADER_LIMIT, where, "header")
            empty = None  # the line number of a field without a value just before
            for n, (raw, end) in enumerate(lines, start=1):
                line = raw[:-1] if raw.endswith(b"\r") else raw
                if b"\x00" in line or b"\r" in line:
                    raise ImageReadError(f"has a NUL or carriage-return character inside line {n} of its header; "
                                         "the header is corrupt", path=where)
                if len(line) >= _METAIO_LINE:
                    raise ImageReadError(f"has a line of {len(line)} characters (line {n}) in its header, more than "
                                         f"MetaImage readers read ({_METAIO_LINE - 1}); the header is corrupt",
                                         path=where)
                text = line.decode("latin-1")
                if not text.strip(_WHITESPACE):
                    continue
                cut = min((i for i in (text.find("="), text.find(":")) if i >= 0), default=-1)
                name = text[: max(cut, 0)].lstrip(_WHITESPACE).rstrip(" \t")
                if cut < 0 or not name:
                    raise ImageReadError(f"has a line that is not 'Name = Value' in its header (line {n}: "
                                         f"{text.strip()[:60]!r}); the header is corrupt", path=where)
                value = text[cut:].lstrip("=: \t").rstrip(_WHITESPACE)
                if name == "ElementDataFile":
                    if empty is not None:
                        raise ImageReadError(
                            f"has a field without a value (line {empty}) just before ElementDataFile in its header, "
                            "which MetaImage readers may take as its value; the header is corrupt", path=where)
                    names = _metaimage_files(p, value, fields, f, end)
                    raw_value = text[cut:].lstrip("=: \t")  # also as written, should MetaIO keep a trailing blank
                    return _DataFiles(fields, value, names, _fallbacks(value, raw_value), end)
                empty = n if not value else None
                fields[name] = value
    except OSError as err:
        raise ImageReadError(f"cannot be opened: {err.strerror or err}", path=where) from None
    return _DataFiles(fields, None, [], [], 0)


def _is_local(value: str) -> bool:
    return value in ("LOCAL", "Local", "local")


def _fallbacks(value: str, raw_value: str) -> list[str]:
    """MetaIO opens ``NAME.gz``, then ``NAME.Z``, when the one data file ``NAME`` cannot be opened."""
    if _is_local(value) or value.startswith("LIST") or "%" in value:
        return []
    return [value + ".gz", value + ".Z", *([raw_value] if raw_value != value else [])]


def _metaimage_files(p: Path, value: str, fields: dict[str, str], f: BinaryIO, start: int) -> list[str]:
    """The data files MetaIO opens for ``ElementDataFile = value`` (``f`` is positioned somewhere after the line)."""
    where = str(p)
    if _is_local(value):
        return []
    if value.startswith("LIST"):  # MetaIO: the lines after this one, one file each, trailing blanks cut
        f.seek(start)
        names = []
        for raw, _ in _lines(f, re.compile(rb"\n"), _LIST_LIMIT, where, "list of data files"):
            name = raw.decode("latin-1")
            name = name[:1] + name[1:].rstrip(_METAIO_UNPRINTABLE)
            if name.strip(_WHITESPACE):
                names.append(name)
            if len(names) > _MAX_FILES:
                raise ImageReadError(f"names more than {_MAX_FILES} data files; the header is corrupt", path=where)
        return names
    if "%" in value:
        return _metaimage_pattern(value, fields, where)
    return [value]


def _metaimage_pattern(value: str, fields: dict[str, str], where: str) -> list[str]:
    """The files of ``FORMAT [MIN [MAX [STEP]]]`` as MetaIO numbers them (defaults from the last DimSize)."""
    words = [w for w in value.split(" ") if w]
    if len(words) == 5 and all(w.isdigit() and w.isascii() for w in words[1:]):  # ITK mis-reads this form
        raise ImageReadError(
            f"names its data files by a numbered pattern with a file dimension ({value!r}), which "
            "medaug cannot read safely; drop the last number (one slice per file) or list the files (LIST)",
            path=where,
        )
    if (any(c in value for c in "\t\v\f") or len(words) > 4 or _ONE_INT_FORMAT.fullmatch(words[0]) is None
            or not all(w.isdigit() and w.isascii() for w in words[1:])):
        raise ImageReadError(
            f"names its data files by a pattern medaug cannot read safely ({value!r}); the pattern must be one "
            "printf format with a single %d, then up to three whole numbers (first, last, step): fix the "
            "ElementDataFile line or list the files (LIST)",
            path=where,
        )
    try:
        last = _dims(fields)[-1]
    except (ValueError, IndexError):
        raise ImageReadError(f"names its data files by a pattern ({value!r}) but has no valid NDims and DimSize; "
                             "the header is corrupt", path=where) from None
    numbers = [int(w) for w in words[1:]]
    first, stop, step = 1, last, 1
    if len(numbers) >= 1:
        first = numbers[0]
        stop = first + last - 1
    if len(numbers) >= 2:
        stop = numbers[1]
        step = _c_div(stop - first, last)
    if len(numbers) >= 3:
        step = numbers[2]
    if step <= 0 or last <= 0:
        raise ImageReadError(f"names its data files by a pattern ({value!r}) whose step is not positive; fix "
                             "the ElementDataFile line", path=where)
    if 1 + _c_div(stop - first, step) > last:
        stop = (last - 1) * step + first
    if stop >= first and (stop - first) // step >= _MAX_FILES:
        raise ImageReadError(f"names more than {_MAX_FILES} data files; the header is corrupt", path=where)
    return [words[0] % i for i in range(first, stop + 1, step)]


def _c_div(a: int, b: int) -> int:
    """C's integer division (toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _dims(fields: dict[str, str]) -> list[int]:
    """DimSize as MetaIO reads it: NDims whole numbers (ValueError when they are not there)."""
    if "NDims" not in fields or "DimSize" not in fields:
        raise ValueError("no NDims or DimSize")
    ndims = int(fields["NDims"])
    dims = [int(v) for v in fields["DimSize"].split()[:ndims]]
    if len(dims) != ndims:
        raise ValueError("DimSize")
    return dims


def _nrrd(p: Path) -> _DataFiles:
    """The files teem opens for the ``data file`` field(s) of an NRRD header (none for attached data).

    teem ends a line at ``\\n``, ``\\r\\n`` or ``\\r``, and the header at the
    first empty line (or at the end of a detached header); a ``LIST`` is
    followed by one file name a line, up to an empty line.
    """
    where = str(p)
    names: list[str] = []
    fallbacks: list[str] = []
    try:
        with open(p, "rb") as f:
            lines = _lines(f, re.compile(rb"\r\n|\r|\n"), _HEADER_LIMIT, where, "header")
            for n, (raw, _) in enumerate(lines, start=1):
                if not raw:
                    break  # the end of the header
                if b"\x00" in raw:
                    raise ImageReadError(f"has a NUL character in line {n} of its header; the header is corrupt",
                                         path=where)
                text = raw.decode("latin-1")
                key, sep, value = text.partition(":")
                if not sep or text.startswith("#") or key.strip().lower() not in ("data file", "datafile"):
                    continue
                written = value.lstrip("=").lstrip(" \t")
                value = written.strip()
                if value == "-":
                    raise ImageReadError("names '-' as its data file, i.e. standard input; point the header at the "
                                         "file that holds the voxels", path=where)
                if value.startswith("LIST"):
                    for raw_name, _ in _lines_after(lines, where):
                        names.append(raw_name)
                        fallbacks.append(raw_name.strip())
                    break
                names.extend(_nrrd_pattern(value, where) if "%" in value else [value])
                fallbacks.append(written)  # as written, should teem keep a trailing blank
    except OSError as err:
        raise ImageReadError(f"cannot be opened: {err.strerror or err}", path=where) from None
    return _DataFiles({}, None, names, [n for n in fallbacks if n not in names], 0)


def _lines_after(lines: Iterator[tuple[bytes, int]], where: str) -> Iterator[tuple[str, int]]:
    """The file names of an NRRD ``LIST``: the next lines, up to an empty line."""
    for k, (raw, end) in enumerate(lines):
        if not raw:
            return
        if k >= _MAX_FILES:
            raise ImageReadError(f"names more than {_MAX_FILES} data files; the header is corrupt", path=where)
        if b"\x00" in raw:
            raise ImageReadError("has a NUL character in the list of its data files; the header is corrupt",
                                 path=where)
        yield raw.decode("latin-1"), end


def _nrrd_pattern(value: str, where: str) -> list[str]:
    """The files of ``FORMAT MIN MAX STEP [DIM]`` as teem numbers them."""
    words = value.split()
    m = re.fullmatch(r"\s*(-?\d+)\s+(-?\d+)\s+(-?\d+)(?:\s+\d+)?\s*", value[len(words[0]):] if words else "")
    if m is None or _ONE_D_FORMAT.fullmatch(words[0]) is None:
        raise ImageReadError(
            f"names its data files by a pattern medaug cannot read safely ({value!r}); the pattern must be one "
            "printf format with a single %d, then first, last and step: fix the 'data file' line or list the files "
            "(LIST)",
            path=where,
        )
    first, last, step = (int(v) for v in m.groups())
    if step == 0 or (last - first) * step < 0:
        raise ImageReadError(f"names its data files by a pattern ({value!r}) that never reaches its last number; "
                             "fix the 'data file' line", path=where)
    if abs(last - first) // abs(step) >= _MAX_FILES:
        raise ImageReadError(f"names more than {_MAX_FILES} data files; the header is corrupt", path=where)
    return [words[0] % i for i in range(first, last + (1 if step > 0 else -1), step)]
