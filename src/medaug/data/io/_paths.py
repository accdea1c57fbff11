"""Checks on an input path before any reader opens it."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from ...errors import ImageReadError
from ._formats import PathType


def check_utf8_name(path: PathType) -> None:
    """Refuse a path that is not valid UTF-8 (the C++ readers abort the process on such names).

    Raises
    ------
    ImageReadError
        Naming the path, with its raw bytes.
    """
    text = os.fsdecode(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ImageReadError(
            f"the name is not valid UTF-8 ({os.fsencode(os.path.basename(text))!r}), which the image readers cannot "
            "open; rename it with a UTF-8 name (e.g. convmv -f latin1 -t utf-8)",
            path=text,
        ) from None


def _check_input_path(p: Path) -> None:
    """Refuse, with a clear message, what cannot be read before any reader sees it.

    A non-UTF-8 name, a missing file, a broken or looping symbolic link, a
    FIFO, device or socket (opening one would block or read without end), and a
    file or folder without read permission.
    """
    where = str(p)
    check_utf8_name(p)
    try:
        mode = os.stat(p).st_mode
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise ImageReadError(
                "is a symbolic link loop (the link points, through other links, back to itself); replace it by a "
                "link to the real file",
                path=where,
            ) from None
        if p.is_symlink():
            raise ImageReadError(
                f"is a broken symbolic link to {os.readlink(p)}, which does not exist; fix or remove the link",
                path=where,
            ) from None
        if err.errno == errno.EACCES:
            raise ImageReadError(
                "cannot be reached: permission denied on a folder of its path; check the permissions", path=where
            ) from None
        raise ImageReadError("file not found; check the path and the current folder", path=where) from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise ImageReadError(f"is {file_kind(mode)}, not an image file; pass a regular file", path=where)
    try:
        if p.is_dir():
            os.listdir(p)
        else:
            with open(p, "rb"):
                pass
    except PermissionError:
        raise ImageReadError(
            "cannot be opened: permission denied; ask for read access (e.g. chmod u+r) or copy the file", path=where
        ) from None
    except OSError as err:
        raise ImageReadError(f"cannot be opened: {err.strerror or err}", path=where) from None


def file_kind(mode: int) -> str:
    """What a ``st_mode`` describes, in words ("a FIFO", "a character device", ...)."""
    for test, text in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return text
    return "not a regular file"
