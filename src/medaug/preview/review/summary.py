"""Share of samples judged realistic (verdicts) or real (Turing test), per transform and per parameter range.

A verdict or a Turing answer is given on a whole sample, so a sample made by
several transforms counts once under each of them.  Every (sample, reviewer)
verdict and every (item, reader) Turing answer counts once.  Samples without a
transform (``--include-originals`` copies) are grouped as ``(none)`` in the
verdict table; in the Turing test they are the originals.

Turing test
-----------
Per reader, and pooled over every reader: the reader's accuracy on the
originals (the share of originals answered "real"), the share of all augmented
images answered "real", and that share per transform and parameter range.  A
share near the originals' share means readers could not tell the augmented
images from real ones.  Pooled shares count every reading once, as if readings
were independent (they are not quite: one reader's answers correlate).

Every share comes with a 95 % Wilson score interval (:func:`wilson`), which
keeps to [0, 1] and stays honest for small counts and shares near 0 or 1.
:func:`suggest_limits` lists the ranges where readers spotted augmentation
(answered "augmented", or "not realistic") in more than a chosen share of the
readings, and the ranges of the same parameter they did not flag.

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

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from .store import ReviewSample, VerdictStore, read_samples
from .turing import turing_items

__all__ = ["MAIN_PARAMETER", "ROTATION_BINS", "Suggestion", "SummaryRow", "TuringTable", "format_suggestions",
           "format_summary", "format_turing", "suggest_limits", "summarize", "summary_json", "tally", "turing_summary",
           "wilson"]

#: The normal quantile of a two-sided 95 % interval.
Z95 = 1.959963984540054

ROTATION_BINS = (0.0, 3.0, 6.0, 10.0, 15.0, 20.0, 30.0, 45.0, 90.0, 180.0)

#: Transform name -> the parameter its range is judged by.
MAIN_PARAMETER = {
    "Noise": "std", "Blur": "std", "Sharpen": "amount", "Gamma": "gamma", "Contrast": "scale", "Brightness": "shift",
    "BiasField": "coefficients", "ElasticBSpline": "max_displacement", "ElasticDense": "alpha", "Motion": "degrees",
    "Ghosting": "intensity", "Spike": "intensity", "Gibbs": "alpha", "LowResolution": "factor", "Resize": "factor",
    "RadialDistortion": "k1", "GaussianField": "amplitude", "Cutout": "holes", "HistogramShift": "y",
}
_NOT_MAIN = {"seed", "mask", "lo", "hi", "center", "p", "kind", "mode", "axis", "axes", "name", "output"}


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial share ``k / n`` (95 % by default); (nan, nan) when ``n`` is 0.

    ``(p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)`` with ``p = k/n``.

    Examples
    --------
    >>> [round(x, 4) for x in wilson(8, 10)]
    [0.4902, 0.9433]
    >>> [round(x, 4) for x in wilson(0, 5)]
    [0.0, 0.4345]
    """
    if n == 0:
        return float("nan"), float("nan")
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class SummaryRow:
    """Counts of one group: ``realistic`` of ``judged`` were judged realistic (verdicts) or real (Turing test)."""

    transform: str
    parameter: str  # "" for the whole transform
    range: str  # "" for the whole transform
    judged: int
    realistic: int

    @property
    def share(self) -> float:
        return self.realistic / self.judged if self.judged else float("nan")

    @property
    def ci(self) -> tuple[float, float]:
        """95 % Wilson score interval of :attr:`share`."""
        return wilson(self.realistic, self.judged)

    def as_dict(self) -> dict[str, Any]:
        lo, hi = self.ci
        finite = self.judged > 0
        return {"transform": self.transform, "parameter": self.parameter, "range": self.range, "n": self.judged,
                "k": self.realistic, "share": self.share if finite else None,
                "ci95": [lo, hi] if finite else None}


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


def _binners(samples: dict[str, ReviewSample]) -> dict[tuple[str, str], Callable[[float], str]]:
    """One binner per (transform, parameter), from every sample of the manifest, so bins do not move as answers arrive."""
    values: dict[tuple[str, str], list[float]] = defaultdict(list)
    fixed: set[tuple[str, str]] = set()
    for s in samples.values():
        for rec in s.transforms:
            for label, v, is_rot in _measures(rec):
                values[(rec["name"], label)].append(v)
                if is_rot:
                    fixed.add((rec["name"], label))
    return {k: (_rotation_bin if k in fixed else _tercile_binner(v)) for k, v in values.items()}


def tally(samples: dict[str, ReviewSample], judgements: Iterable[tuple[str, bool]]) -> list[SummaryRow]:
    """Rows per transform (``parameter == ""``) and per parameter range, transforms in manifest order.

    ``judgements`` are (sample id, judged realistic or real); unknown samples are skipped.
    """
    binners = _binners(samples)
    judged: dict[tuple[str, str, str], list[int]] = {}
    order = list(dict.fromkeys(t["name"] for s in samples.values() for t in (s.transforms or [{"name": "(none)"}])))
    for sid, positive in judgements:
        s = samples.get(sid)
        if s is None:
            continue
        keys = [("(none)", "", "")] if not s.transforms else []
        for rec in s.transforms:
            keys.append((rec["name"], "", ""))
            keys += [(rec["name"], label, binners[(rec["name"], label)](x)) for label, x, _ in _measures(rec)]
        for k in dict.fromkeys(keys):  # a transform used twice in one sample counts once per range
            cell = judged.setdefault(k, [0, 0])
            cell[0] += 1
            cell[1] += int(positive)
    rows = [SummaryRow(t, p, r, n, ok) for (t, p, r), (n, ok) in judged.items()]
    rows.sort(key=lambda row: (order.index(row.transform), row.parameter, _sort_key(row.range)))
    return rows


def summarize(
    directory: str | Path | None = None,
    *,
    samples: dict[str, ReviewSample] | None = None,
    verdicts: Iterable[dict[str, Any]] | None = None,
) -> list[SummaryRow]:
    """The verdicts' rows (see :func:`tally`): how many samples were judged realistic."""
    if samples is None:
        samples = read_samples(directory)  # type: ignore[arg-type]
    if verdicts is None:
        verdicts = VerdictStore(directory).all()  # type: ignore[arg-type]
    return tally(samples, ((v["sample"], v["verdict"] == "realistic") for v in verdicts))


@dataclass(frozen=True)
class TuringTable:
    """The Turing test's result for one reader (``reader == ""``: every reader pooled)."""

    reader: str
    originals: SummaryRow  # judged: readings of originals; realistic: answered "real" (the accuracy)
    augmented: SummaryRow  # the same over every augmented image
    rows: list[SummaryRow]  # augmented images per transform and parameter range

    def as_dict(self) -> dict[str, Any]:
        return {"reader": self.reader or None, "originals": self.originals.as_dict(),
                "augmented": self.augmented.as_dict(), "rows": [r.as_dict() for r in self.rows]}


def turing_summary(samples: dict[str, ReviewSample], answers: Iterable[dict[str, Any]]) -> list[TuringTable]:
    """Every reader pooled first, then each reader by name; answers on items no longer in the manifest are skipped."""
    items, _ = turing_items(samples)
    by_reader: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in answers:
        if a["item"] in items:
            by_reader[a["reader"]].append(a)
    pooled = [a for reader in sorted(by_reader) for a in by_reader[reader]]
    tables = []
    for reader, mine in [("", pooled), *sorted(by_reader.items())]:
        real = [(items[a["item"]], a["answer"] == "real") for a in mine]
        originals = [ok for item, ok in real if item.kind == "original"]
        augmented = [(item.sample_id, ok) for item, ok in real if item.kind == "augmented"]
        tables.append(TuringTable(
            reader,
            SummaryRow("originals", "", "", len(originals), sum(originals)),
            SummaryRow("augmented, all", "", "", len(augmented), sum(ok for _, ok in augmented)),
            tally(samples, augmented),  # type: ignore[arg-type]
        ))
    return tables


@dataclass(frozen=True)
class Suggestion:
    """A parameter whose ranges readers flagged: the flagged rows and the ranges they did not flag."""

    transform: str
    parameter: str
    flagged: list[SummaryRow]
    kept: list[str]


def suggest_limits(rows: Sequence[SummaryRow], rate: float) -> tuple[list[SummaryRow], list[Suggestion]]:
    """Rows where readers spotted augmentation (``judged - realistic``) in more than ``rate`` of the readings.

    Returns the flagged whole-transform rows and, per flagged parameter, a :class:`Suggestion`.
    """
    def spotted(row: SummaryRow) -> bool:
        return row.judged > 0 and (row.judged - row.realistic) / row.judged > rate

    whole = [r for r in rows if not r.parameter and spotted(r)]
    suggestions = []
    for key in dict.fromkeys((r.transform, r.parameter) for r in rows if r.parameter):
        ranges = [r for r in rows if (r.transform, r.parameter) == key]
        flagged = [r for r in ranges if spotted(r)]
        if flagged:
            suggestions.append(Suggestion(key[0], key[1], flagged, [r.range for r in ranges if not spotted(r)]))
    return whole, suggestions


# ---------------------------------------------------------------- text and JSON
def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.0%}"


def _table(rows: Sequence[SummaryRow], n_name: str, k_name: str) -> list[str]:
    """Rows as text: name, n, k, share, 95 % CI (parameter ranges indented under their transform)."""
    header = f"{'transform / parameter range':<44} {n_name:>8} {k_name:>11} {'share':>6}  {'95% CI':>9}"
    lines = [header, "-" * len(header)]
    for row in rows:
        name = row.transform if not row.parameter else f"  {row.parameter} {row.range}"
        lo, hi = row.ci
        ci = "-" if math.isnan(lo) else f"{lo:.0%}–{hi:.0%}"
        lines.append(f"{name:<44} {row.judged:>8} {row.realistic:>11} {_pct(row.share):>6}  {ci:>9}")
    return lines


def format_summary(rows: Sequence[SummaryRow], *, total: int | None = None, judged_samples: int | None = None) -> str:
    """The verdicts as a plain-text table: transform, parameter range, judged, realistic, share, 95 % CI."""
    lines = []
    if total is not None:
        lines.append(f"{judged_samples or 0} of {total} sample(s) judged")
    if not rows:
        lines.append("no verdicts yet")
        return "\n".join(lines)
    return "\n".join(lines + _table(rows, "judged", "realistic"))


def format_turing(tables: Sequence[TuringTable]) -> str:
    """The Turing test as plain text: every reader pooled, then each reader."""
    readers = len(tables) - 1
    if readers < 1:
        return "visual Turing test: no answers yet"
    pooled = tables[0]
    readings = pooled.originals.judged + pooled.augmented.judged
    head = f"visual Turing test: {readers} reader(s), {readings} reading(s); share answered 'real' with its 95% Wilson "
    lines = [head + "score interval"]
    for table in tables:
        lines += ["", f"reader {table.reader}" if table.reader else "all readers pooled"]
        lines += _table([table.originals, table.augmented, *table.rows], "readings", "judged real")
        lo, hi = table.originals.ci
        if table.originals.judged:
            lines.append(f"accuracy on originals {_pct(table.originals.share)} ({_pct(lo)}–{_pct(hi)})")
    return "\n".join(lines)


def format_suggestions(whole: Sequence[SummaryRow], suggestions: Sequence[Suggestion], rate: float, what: str) -> str:
    """``--suggest-limits``: the flagged ranges and the ranges to keep, as plain text."""
    lines = [f"{what}: ranges where readers spotted augmentation in more than {rate:.0%} of the readings"]
    if not whole and not suggestions:
        return "\n".join(lines + ["  none"])
    for row in whole:
        lo, hi = row.ci
        lines.append(f"  {row.transform} (all ranges): spotted in {row.judged - row.realistic} of {row.judged} "
                     f"({_pct(1 - row.share)}, 95% CI {_pct(1 - hi)}–{_pct(1 - lo)})")
    for sug in suggestions:
        for row in sug.flagged:
            lo, hi = row.ci
            lines.append(f"  {sug.transform} {sug.parameter} {row.range}: spotted in {row.judged - row.realistic} of "
                         f"{row.judged} ({_pct(1 - row.share)}, 95% CI {_pct(1 - hi)}–{_pct(1 - lo)})")
        keep = f"keep to {', '.join(sug.kept)}" if sug.kept else "every range was spotted: weaken or drop the transform"
        lines.append(f"  -> {sug.transform} {sug.parameter}: {keep}")
    return "\n".join(lines)


def summary_json(total: int, verdict_rows: Sequence[SummaryRow], judged_samples: int, tables: Sequence[TuringTable],
                 rate: float | None = None) -> dict[str, Any]:
    """Everything of ``--summary`` as one JSON-able dict (``n``: readings, ``k``: judged realistic or real)."""
    out: dict[str, Any] = {
        "samples": total,
        "interval": "Wilson score, 95%",
        "verdicts": {"judged_samples": judged_samples, "rows": [r.as_dict() for r in verdict_rows]},
        "turing": {"readers": [t.reader for t in tables[1:]], "tables": [t.as_dict() for t in tables]},
    }
    if rate is not None:
        sources = {"verdicts": verdict_rows, "turing": tables[0].rows if len(tables) > 1 else []}
        out["suggest_limits"] = {"rate": rate}
        for name, rows in sources.items():
            whole, suggestions = suggest_limits(rows, rate)
            out["suggest_limits"][name] = {
                "transforms": [r.as_dict() for r in whole],
                "parameters": [{"transform": s.transform, "parameter": s.parameter, "kept": s.kept,
                                "flagged": [r.as_dict() for r in s.flagged]} for s in suggestions]}
    return out
