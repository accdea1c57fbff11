"""The one exception hierarchy of medaug.

Every error a user can cause (a bad file, bad geometry, a bad parameter, an
unsafe pipeline) is raised as a subclass of :class:`MedaugError`, with a
message that names the file or parameter, the problem and, where one exists,
the fix.  The command line prints such errors as one line and exits with 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from os import PathLike

__all__ = [
    "MedaugError",
    "ImageReadError",
    "ImageWriteError",
    "InvalidImageError",
    "GeometryError",
    "ParameterError",
    "UnsafePipelineError",
    "NotInvertibleError",
    "JobError",
    "DegreesWarning",
    "did_you_mean",
    "plural",
]


class MedaugError(Exception):
    """Base class of every error medaug raises on purpose."""

    def __init__(self, message: str, *, path: str | PathLike[str] | None = None) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        super().__init__(message)

    def __str__(self) -> str:
        """The message, led by the file it concerns (``path`` may be set after construction)."""
        return f"{self.path}: {self.message}" if self.path else self.message

    def __reduce__(self) -> tuple:
        """Pickle message and path (errors cross process boundaries from workers)."""
        return (type(self), (self.message,), dict(self.__dict__))


class ImageReadError(MedaugError):
    """A file is missing, unreadable, corrupt or in an unsupported format."""


class ImageWriteError(MedaugError):
    """A file cannot be written: missing folder, no permission, disk full, unsupported format."""


class InvalidImageError(MedaugError):
    """An image was read but cannot be used: NaN/Inf, wrong dimensionality, empty, ..."""


class GeometryError(MedaugError):
    """Images that must share a grid do not (size, spacing, origin or direction)."""


class ParameterError(MedaugError, ValueError):
    """A transform parameter or configuration entry is invalid."""


class UnsafePipelineError(ParameterError):
    """A pipeline violates the medical constraints of its modality."""


class NotInvertibleError(ParameterError):
    """A recorded transform has no inverse (e.g. a deformation that folds)."""


class JobError(MedaugError):
    """A batch job could not finish every case."""


class DegreesWarning(UserWarning):
    """An angle that looks like radians where medaug takes degrees (e.g. ``rotation: 0.5``)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)  # any YAML key
    return f" (did you mean '{close[0]}'?)" if close else ""


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``count`` and ``noun``, in the plural unless the count is one (``nouns``, default ``noun + "s"``).

    Examples
    --------
    >>> plural(1, "augmented copy", "augmented copies"), plural(3, "case"), plural(0, "run")
    ('1 augmented copy', '3 cases', '0 runs')
    """
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"
