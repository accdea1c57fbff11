"""One reader for the numbers and ranges that transform parameters hold.

Random transforms take *ranges* and draw from them; deterministic transforms
take *numbers*.  Both are read here, so that every parameter is written the
same way and has a finite, sensible bound that is checked when the transform
is built: a configuration that passes validation cannot fail at run time
because of a value (NaN, infinity, ``2**63``, a negative width ...).

A range is a pair ``[min, max]``, or one number whose meaning is the range's
*mode*:

=============  ==============================  ============================================
mode           one number ``d`` means          used for
=============  ==============================  ============================================
``symmetric``  ``(anchor - d, anchor + d)``    rotation, translation, shear, ``log_gamma``;
                                               scale with anchor 1: ``s`` is ``(1 - s, 1 + s)``
``from``       ``(anchor, d)``                 noise std ``[0, s]``, down-sampling ``[1, f]``
``exact``      ``(d, d)``                      counts, sizes, clip limits
=============  ==============================  ============================================

:meth:`Range.per_axis` reads a range given once for all axes or once per axis:
``[r_0, r_1, r_2]`` (each a number or a pair), or ``[min_0, max_0, min_1,
max_1, ...]``.  A flat pair ``[a, b]`` is always one range ``[a, b]`` for
every axis; per-axis ranges of two axes are written as pairs ``[[a, b], [c, d]]``.
Spatial transforms list axes in physical (x, y, z) = (LR, AP, SI) order
(:mod:`medaug.data.axes`).  A ``Range(integer=True)`` holds integers (counts,
sizes); :meth:`Range.ints` returns them as ``int``.

Examples
--------
>>> Range("symmetric").parse(10, "rotation")
(-10.0, 10.0)
>>> Range("symmetric", anchor=1.0, bounds=(0.05, 20.0)).parse(0.1, "scale")
(0.9, 1.1)
>>> Range("from", bounds=(0.0, 1e6)).parse(15, "std")
(0.0, 15.0)
>>> Range("exact", bounds=(0, 1000), integer=True).ints([1, 4], "num_holes")
(1, 4)
>>> Range("symmetric", bounds=(-180, 180)).per_axis([0, 0, 15], "rotation", 3)
[(0.0, 0.0), (0.0, 0.0), (-15.0, 15.0)]
>>> number(float("nan"), "std", (0, 100))  # doctest: +IGNORE_EXCEPTION_DETAIL
Traceback (most recent call last):
ParameterError: 'std' must be a finite number, got nan
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..errors import DegreesWarning, ParameterError

__all__ = [
    "BIG", "INTENSITY", "Mode", "Range", "number", "count", "numbers", "for_axes", "flag", "text", "is_number",
    "RangeLike", "PerAxisRange", "Numbers", "warn_if_radians",
]

#: The default bound of a parameter without a natural one (|value| <= 1e6).
BIG = 1e6
#: Bounds of values measured from an image, in its own units (float32 range, with room).
INTENSITY = (-1e30, 1e30)

Mode = Literal["symmetric", "from", "exact"]
#: A number, or a pair [min, max].
RangeLike = float | Sequence[float]
#: A range for every axis, or one per axis.
PerAxisRange = float | Sequence[float | Sequence[float]]
#: One number, or one per axis.
Numbers = float | Sequence[float]


def is_number(value: Any) -> bool:
    """True for an int or float (NumPy's too), False for bool and everything else."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def warn_if_radians(value: Any, name: str, owner: str) -> None:
    """Warn (:class:`~medaug.errors.DegreesWarning`) when an angle range looks like radians.

    MONAI takes radians; medaug takes degrees.  A range whose non-zero values
    are all floats (``0.5``, ``[-0.3, 0.3]``, ``[0, 0, 0.2]``) and whose largest
    magnitude is below 2π is most likely radians.  Integers (``10``) and 0
    never warn.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_if_radians(0.5, "rotation", "RandomAffine")
    ...     warn_if_radians(10, "rotation", "RandomAffine")
    >>> len(caught), caught[0].category.__name__
    (1, 'DegreesWarning')
    """
    flat, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (list, tuple, np.ndarray)):
            stack.extend(item)
        elif is_number(item) and item != 0:
            flat.append(item)
    if not flat or not all(isinstance(v, (float, np.floating)) for v in flat):
        return
    largest = max(abs(float(v)) for v in flat)
    if largest < 2 * math.pi:
        warnings.warn(
            f"{owner} '{name}' is in degrees: {value!r} turns by at most {_fmt(largest)}°; if you meant radians "
            f"(as in MONAI), write {_fmt(round(math.degrees(largest), 1))}",
            DegreesWarning, stacklevel=4)


def _fmt(v: float) -> str:
    return f"{v:g}"


def _real(value: Any, name: str) -> float:
    if not is_number(value):
        raise ParameterError(f"'{name}' must be a number, got {value!r}")
    try:
        v = float(value)
    except OverflowError:
        raise ParameterError(f"'{name}' must be a finite number, got an integer of {int(value).bit_length()} bits") from None
    if not math.isfinite(v):
        raise ParameterError(f"'{name}' must be a finite number, got {value!r}")
    return v + 0.0  # -0.0 becomes 0.0


def _check_bounds(lo: float, hi: float, name: str, bounds: tuple[float, float], low_open: bool, unit: str) -> None:
    b0, b1 = bounds
    below = lo <= b0 if low_open else lo < b0
    if below or hi > b1:
        left = "(" if low_open else "["
        got = _fmt(lo) if lo == hi else f"[{_fmt(lo)}, {_fmt(hi)}]"
        raise ParameterError(f"'{name}' must lie in {left}{_fmt(b0)}, {_fmt(b1)}]{unit}, got {got}")


def number(
    value: Any, name: str, bounds: tuple[float, float] = (-BIG, BIG), *, low_open: bool = False, unit: str = ""
) -> float:
    """A finite number within ``bounds`` (``low_open``: strictly above the lower bound).

    Raises
    ------
    ParameterError
        Naming the parameter, the bounds and the value.
    """
    v = _real(value, name)
    _check_bounds(v, v, name, bounds, low_open, _unit(unit))
    return v


def count(value: Any, name: str, bounds: tuple[int, int] = (0, 1000)) -> int:
    """An integer within ``bounds`` (a float holding an integer, such as ``3.0``, is accepted).

    Integers are compared exactly (a seed of ``2**62 + 1`` keeps its last bit).
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        if not bounds[0] <= int(value) <= bounds[1]:
            raise ParameterError(f"'{name}' must lie in [{bounds[0]}, {bounds[1]}], got {int(value)}")
        return int(value)
    v = _real(value, name)
    if v != int(v):
        raise ParameterError(f"'{name}' must be an integer, got {value!r}")
    return count(int(v), name, bounds)


def numbers(
    value: Any, name: str, bounds: tuple[float, float] = (-BIG, BIG), *, sizes: Sequence[int] = (1, 2, 3),
    low_open: bool = False, integer: bool = False, unit: str = "",
) -> list[float]:
    """One number or a list of ``sizes`` numbers, each finite and within ``bounds`` (and whole when ``integer``)."""
    items = [value] if is_number(value) else value
    if not isinstance(items, Sequence) or isinstance(items, str) or len(items) not in sizes:
        want = f"{sizes[0]} to {sizes[-1]}" if isinstance(sizes, range) else " or ".join(str(s) for s in sizes)
        raise ParameterError(f"'{name}' must be {want} number(s), got {value!r}")
    out = [number(v, f"{name}[{i}]" if len(items) > 1 else name, bounds, low_open=low_open, unit=unit)
           for i, v in enumerate(items)]
    if integer and any(v != int(v) for v in out):
        raise ParameterError(f"'{name}' must hold integers, got {value!r}")
    return out


def for_axes(value: Any, n: int, name: str, order: str = "x, y, z") -> np.ndarray:
    """A validated number or list of numbers (:func:`numbers`) as one value per axis of an ``n``-D image.

    One value serves every axis; a list must have ``n`` values, in ``order``.
    """
    values = np.atleast_1d(np.asarray(value, float))
    if values.ndim != 1 or values.size not in (1, n):
        raise ParameterError(f"'{name}' needs 1 or {n} values ({order} order) for a {n}D image, got {value!r}")
    return np.full(n, values[0]) if values.size == 1 else values.copy()


def flag(value: Any, name: str) -> bool:
    """A yes/no parameter: ``true`` or ``false`` (a number or a text is refused, not read as true)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ParameterError(f"'{name}' must be true or false, got {value!r}")
    return bool(value)


def text(value: Any, name: str, *, optional: bool = True) -> str | None:
    """A name (an image, a label map, a mask): text, or None when ``optional``."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value or len(value) > 256 or not value.isprintable():
        raise ParameterError(f"'{name}' must be a name (printable text){' or null' if optional else ''}, got {value!r}")
    return value


def _unit(unit: str) -> str:
    return f" {unit}" if unit else ""


class _CountError(ParameterError):
    """A per-axis value with the wrong number of entries."""


def _is_pair(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2 and all(
        is_number(v) for v in value
    )


@dataclass(frozen=True)
class Range:
    """How a range parameter is written and what it may hold.

    Parameters
    ----------
    mode : {"symmetric", "from", "exact"}
        What one number means (see the module docstring).
    anchor : float
        The centre of a symmetric range, or the start of a ``from`` range.
    bounds : (float, float)
        Allowed values (finite); both ends of the range must lie within.
    low_open : bool
        Values must be strictly above ``bounds[0]`` (e.g. a width > 0).
    integer : bool
        Both ends must be integers.
    unit : str
        Shown in messages (``"mm"``, ``"degrees"``).
    """

    mode: Mode = "symmetric"
    anchor: float = 0.0
    bounds: tuple[float, float] = (-BIG, BIG)
    low_open: bool = False
    integer: bool = False
    unit: str = ""

    def describe(self) -> str:
        """How one number is read, for messages."""
        a = _fmt(self.anchor)
        if self.mode == "symmetric":
            return f"a number d meaning ({a} - d, {a} + d)" if self.anchor else "a number d meaning (-d, d)"
        if self.mode == "from":
            return f"a number d meaning [{a}, d]"
        return "a number"

    def parse(self, value: Any, name: str) -> tuple[float, float]:
        """``(min, max)`` from one number or a pair.

        Raises
        ------
        ParameterError
            When malformed, not finite, min > max, outside the bounds, or not integral for integer ranges.
        """
        if is_number(value):
            d = _real(value, name)
            if self.mode == "symmetric":
                if d < 0:
                    raise ParameterError(f"'{name}': {self.describe()}; d must be >= 0, got {_fmt(d)}")
                lo, hi = self.anchor - d, self.anchor + d
            elif self.mode == "from":
                if d < self.anchor:
                    raise ParameterError(f"'{name}': {self.describe()}; d must be >= {_fmt(self.anchor)}, got {_fmt(d)}")
                lo, hi = self.anchor, d
            else:
                lo = hi = d
        elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
            lo, hi = _real(value[0], f"{name}[0]"), _real(value[1], f"{name}[1]")
            if lo > hi:
                raise ParameterError(f"'{name}': range [{_fmt(lo)}, {_fmt(hi)}] has min > max")
        else:
            raise ParameterError(f"'{name}': expected {self.describe()} or a pair [min, max], got {value!r}")
        if self.integer and (lo != int(lo) or hi != int(hi)):
            raise ParameterError(f"'{name}' must be an integer or an integer range [min, max], got {value!r}")
        _check_bounds(lo, hi, name, self.bounds, self.low_open, _unit(self.unit))
        return lo + 0.0, hi + 0.0

    def ints(self, value: Any, name: str) -> tuple[int, int]:
        """An integer range ``(min, max)``, both inclusive."""
        lo, hi = Range(self.mode, self.anchor, self.bounds, self.low_open, True, self.unit).parse(value, name)
        return int(lo), int(hi)

    def per_axis(self, value: Any, name: str, n: int) -> list[tuple[float, float]]:
        """``n`` ranges: one range for every axis, or one per axis (see the module docstring)."""
        if is_number(value) or _is_pair(value):
            return [self.parse(value, name)] * n
        if not isinstance(value, Sequence) or isinstance(value, str):
            raise ParameterError(f"'{name}': expected a range or one range per axis, got {value!r}")
        items = list(value)
        if len(items) == 1:
            return [self.parse(items[0], name)] * n
        if len(items) == n:
            return [self.parse(v, f"{name}[{i}]") for i, v in enumerate(items)]
        if len(items) == 2 * n and all(is_number(v) for v in items):
            return [self.parse(items[2 * i : 2 * i + 2], f"{name}[{i}]") for i in range(n)]
        raise _CountError(
            f"'{name}' needs one range for every axis or {n} (one per axis), got {len(items)} entries: {value!r}"
        )

    def check_axes(self, value: Any, name: str, counts: Sequence[int]) -> None:
        """Validate a per-axis range that must fit at least one of ``counts`` axes (e.g. 2D or 3D).

        A count mismatch is reported only when no count fits; any other problem
        (a bound, min > max) is reported as soon as it is found.
        """
        mismatch: list[int] = []
        for n in counts:
            try:
                self.per_axis(value, name, n)
                return
            except _CountError:
                mismatch.append(n)
        raise ParameterError(
            f"'{name}' needs one range for every axis or one per axis ({' or '.join(map(str, mismatch))} entries), "
            f"got {value!r}"
        )
