"""Share of samples judged realistic, per transform and per parameter range.

A verdict is given on a whole sample, so a sample made by several transforms
counts once under each of them.  Every (sample, reviewer) verdict counts once.
Samples without a transform (``--include-originals`` copies) are grouped as
``(none)``.

Parameter ranges
----------------
* ``Affine``: ``|rotation|`` in degrees (the largest absolute angle about any
  axis), in fixed bins 0–3°, 3–6°, 6–10°, 10–15°, 15–20°, 20–30°, 30–45°,
  45–90°, 90–180°; and, when the scale varies, ``|scale-1|`` (largest over the
  axes) in terciles.
* every other transform: its main scalar parameter (the table
  :data:`MAIN_PARAMETER`, otherwise the first numeric parameter of its record;
  a list counts by its largest absolute entry), in terciles of the values found
  in the whole manifest (reviewed or not), so the bins hold about a third of
  the samples each.  A parameter with fewer than three distinct values gets
  one bin per value.

Bins are half-open ``[lo, hi)``; the last one includes its upper end.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from .store import ReviewSample, VerdictStore, read_samples

__all__ = ["MAIN_PARAMETER", "ROTATION_BINS", "SummaryRow", "format_summary", "summarize"]

ROTATION_BINS = (0.0, 3.0, 6.0, 10.0, 15.0, 20.0, 30.0, 45.0, 90.0, 180.0)

#: Transform name -> the parameter its range is judged by.
MAIN_PARAMETER = {
    "Noise": "std", "Blur": "std", "Sharpen": "amount", "Gamma": "gamma", "Contrast": "scale", "Brightness": "shift",
    "BiasField": "coefficients", "ElasticBSpline": "max_displacement", "ElasticDense": "alpha", "Motion": "degrees",
    "Ghosting": "intensity", "Spike": "intensity", "Gibbs": "alpha", "LowResolution": "factor", "Resize": "factor",
    "RadialDistortion": "k1", "GaussianField": "amplitude", "Cutout": "holes", "HistogramShift": "y",
}
_NOT_MAIN = {"seed", "mask", "lo", "hi", "center", "p", "kind", "mode", "axis", "axes", "name", "output"}


@dataclass(frozen=True)
class SummaryRow:
    transform: str
    parameter: str  # "" for the whole transform
    range: str  # "" for the whole transform
    judged: int
    realistic: int

    @property
    def share(self) -> float:
        return self.realistic / self.judged if self.judged else float("nan")


def _magnitude(value: Any, minus: float = 0.0) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return abs(float(value) - minus)
    if isinstance(value, (list, tuple)) and value:
        mags = [_magnitude(v, minus) for v in value]
        if all(m is not None for m in mags):
            return max(mags)  # type: ignore[type-var]
    return None


def _measures(rec: dict[str, Any]) -> list[tuple[str, float, bool]]:
    """(parameter label, value, fixed rotation bins?) of one transform record."""
    name, params = rec["name"], rec.get("params") or {}
    if name == "Affine":
        out = []
        rot = _magnitude(params.get("rotation", 0.0))
        out.append(("|rotation| (deg)", rot if rot is not None else 0.0, True))
        scale = _magnitude(params.get("scale", 1.0), minus=1.0)
        if scale is not None:
            out.append(("|scale-1|", scale, False))
        return out
    key = MAIN_PARAMETER.get(name)
    if key is None or _magnitude(params.get(key)) is None:
        key = next((k for k, v in params.items() if k not in _NOT_MAIN and _magnitude(v) is not None), None)
    if key is None:
        return []
    return [(key if isinstance(params[key], (int, float)) else f"max|{key}|", float(_magnitude(params[key])), False)]


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _tercile_binner(values: Sequence[float]) -> Callable[[float], str]:
    distinct = sorted(set(values))
    if len(distinct) < 3:
        return lambda v: f"= {_fmt(v)}"
    lo, hi = distinct[0], distinct[-1]
    q1, q2 = (float(q) for q in np.quantile(np.asarray(values), [1 / 3, 2 / 3]))
    edges = sorted({lo, q1, q2, hi})

    def binner(v: float) -> str:
        for a, b in pairwise(edges[:-1]):
            if v < b:
                return f"[{_fmt(a)}, {_fmt(b)})"
        return f"[{_fmt(edges[-2])}, {_fmt(edges[-1])}]"  # the last bin holds its upper end (and anything above)

    return binner


def _rotation_bin(v: float) -> str:
    for a, b in pairwise(ROTATION_BINS):
        if v < b:
            return f"{a:g}–{b:g}°"
    return f"≥{ROTATION_BINS[-1]:g}°"


def _sort_key(label: str) -> float:
    digits = "".join(ch if ch.isdigit() or ch in ".-e" else " " for ch in label).split()
    for d in digits:
        try:
            return float(d)
        except ValueError:
            continue
    return 0.0


def summarize(
    directory: str | Path | None = None,
    *,
    samples: dict[str, ReviewSample] | None = None,
    verdicts: Iterable[dict[str, Any]] | None = None,
) -> list[SummaryRow]:
    """Rows per transform (``parameter == ""``) and per parameter range, in first-seen transform order."""
    if samples is None:
        samples = read_samples(directory)  # type: ignore[arg-type]
    if verdicts is None:
        verdicts = VerdictStore(directory).all()  # type: ignore[arg-type]
    # binners from every sample of the manifest, so bins do not move as verdicts arrive
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    fixed: set[tuple[str, str]] = set()
    for s in samples.values():
        for rec in s.transforms:
            for label, v, is_rot in _measures(rec):
                values[(rec["name"], label)].append(v)
                if is_rot:
                    fixed.add((rec["name"], label))
    binners = {k: (_rotation_bin if k in fixed else _tercile_binner(v)) for k, v in values.items()}
    judged: dict[tuple[str, str, str], list[int]] = {}
    order: list[str] = []
    for v in verdicts:
        s = samples.get(v["sample"])
        if s is None:
            continue
        ok = 1 if v["verdict"] == "realistic" else 0
        keys = [("(none)", "", "")] if not s.transforms else []
        for rec in s.transforms:
            keys.append((rec["name"], "", ""))
            keys += [(rec["name"], label, binners[(rec["name"], label)](x)) for label, x, _ in _measures(rec)]
        for k in dict.fromkeys(keys):  # a transform used twice in one sample counts once per range
            if k[0] not in order:
                order.append(k[0])
            cell = judged.setdefault(k, [0, 0])
            cell[0] += 1
            cell[1] += ok
    rows = [SummaryRow(t, p, r, n, ok) for (t, p, r), (n, ok) in judged.items()]
    rows.sort(key=lambda row: (order.index(row.transform), row.parameter, _sort_key(row.range)))
    return rows


def format_summary(rows: Sequence[SummaryRow], *, total: int | None = None, judged_samples: int | None = None) -> str:
    """A plain-text table: transform, parameter range, judged, realistic, share."""
    lines = []
    if total is not None:
        lines.append(f"{judged_samples or 0} of {total} sample(s) judged")
    if not rows:
        lines.append("no verdicts yet")
        return "\n".join(lines)
    header = f"{'transform / parameter range':<44} {'judged':>6} {'realistic':>9} {'share':>6}"
    lines += [header, "-" * len(header)]
    for row in rows:
        name = row.transform if not row.parameter else f"  {row.parameter} {row.range}"
        lines.append(f"{name:<44} {row.judged:>6} {row.realistic:>9} {row.share:>6.0%}")
    return "\n".join(lines)
