"""The samples of an expansion folder (from its manifest) and the verdict database.

Verdicts live in ``DIR/review.sqlite`` (SQLite, WAL journal) so that they are
saved the moment they are given and survive a server restart or a crash.  Every
call opens its own connection: the threaded server never shares one between
requests.  A verdict is keyed by (sample id, reviewer); the reviewer is ``""``
when none is named, and a new verdict of the same reviewer on the same sample
replaces the old one (its first timestamp is kept).
"""

from __future__ import annotations

import csv
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...datasets.writing import unescape_cell
from ...errors import MedaugError, ParameterError

__all__ = ["DB_NAME", "VERDICTS", "ReviewSample", "VerdictStore", "read_samples"]

DB_NAME = "review.sqlite"
VERDICTS = ("realistic", "not_realistic")
_REQUIRED = ("case_id", "index", "source_image", "output_image", "params")


@dataclass(frozen=True)
class ReviewSample:
    """One manifest row: an augmented file and the original it came from."""

    id: str  # "{case_id}:{index}"
    case_id: str
    index: int
    original: Path  # source image (may lie outside DIR: the input dataset); listed in the manifest
    augmented: Path  # output image, always inside DIR
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def transforms(self) -> list[dict[str, Any]]:
        """The applied transforms (check reports left out)."""
        return [h for h in self.history if isinstance(h, dict) and not h.get("check") and "name" in h]


def read_samples(directory: str | Path) -> dict[str, ReviewSample]:
    """Read ``DIR/manifest.csv`` into ``{sample id: ReviewSample}`` (manifest order).

    An output path that leaves ``DIR`` (a tampered manifest) is an error: the
    server serves augmented files from ``DIR`` only.
    """
    root = Path(directory).resolve()
    manifest = root / "manifest.csv"
    if not root.is_dir():
        raise ParameterError("review folder does not exist or is not a folder", path=root)
    if not manifest.is_file():
        raise ParameterError("no manifest.csv: not a 'medaug expand' output folder", path=root)
    samples: dict[str, ReviewSample] = {}
    with manifest.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in _REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise ParameterError(f"manifest lacks column(s) {', '.join(missing)}", path=manifest)
        for line, raw in enumerate(reader, start=2):
            row = {k: unescape_cell(v) if isinstance(v, str) else v for k, v in raw.items()}  # '=x written as text
            try:
                index = int(row["index"])
                history = json.loads(row["params"] or "[]")
            except (TypeError, ValueError) as exc:
                raise ParameterError(f"line {line}: bad index or params ({exc})", path=manifest) from None
            if not isinstance(history, list):
                raise ParameterError(f"line {line}: params is not a JSON list", path=manifest)
            augmented = (root / row["output_image"]).resolve()
            if not augmented.is_relative_to(root):
                raise ParameterError(f"line {line}: output_image {row['output_image']!r} lies outside the folder", path=manifest)
            source = Path(row["source_image"])
            original = (source if source.is_absolute() else root / source).resolve()
            sid = f"{row['case_id']}:{index}"
            samples[sid] = ReviewSample(sid, row["case_id"], index, original, augmented, history)
    return samples


class VerdictStore:
    """Verdicts of one review folder, in ``DIR/review.sqlite``."""

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory).resolve() / DB_NAME
        try:
            with self.connect() as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(
                    """CREATE TABLE IF NOT EXISTS verdicts (
                        sample TEXT NOT NULL,
                        reviewer TEXT NOT NULL DEFAULT '',
                        verdict TEXT NOT NULL CHECK (verdict IN ('realistic', 'not_realistic')),
                        comment TEXT NOT NULL DEFAULT '',
                        created REAL NOT NULL,
                        updated REAL NOT NULL,
                        PRIMARY KEY (sample, reviewer))"""
                )
        except sqlite3.Error as exc:
            raise MedaugError(f"cannot open the verdict database ({exc})", path=self.path) from None

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh connection for one request (committed on success, always closed)."""
        db = sqlite3.connect(self.path, timeout=10.0)
        try:
            db.execute("PRAGMA busy_timeout=10000")
            db.execute("PRAGMA synchronous=FULL")  # a verdict answered with 200 is on disk (WAL synced per commit)
            with db:
                yield db
        finally:
            db.close()

    def journal_mode(self) -> str:
        with self.connect() as db:
            return str(db.execute("PRAGMA journal_mode").fetchone()[0])

    def put(self, sample: str, verdict: str, comment: str = "", reviewer: str = "") -> dict[str, Any]:
        if verdict not in VERDICTS:
            raise ParameterError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
        now = time.time()
        with self.connect() as db:
            db.execute(
                """INSERT INTO verdicts (sample, reviewer, verdict, comment, created, updated)
                   VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (sample, reviewer) DO UPDATE SET
                     verdict = excluded.verdict, comment = excluded.comment, updated = excluded.updated""",
                (sample, reviewer, verdict, comment, now, now),
            )
        return {"sample": sample, "reviewer": reviewer, "verdict": verdict, "comment": comment, "updated": now}

    def of_reviewer(self, reviewer: str = "") -> dict[str, dict[str, Any]]:
        """``{sample: {verdict, comment, created, updated}}`` for one reviewer."""
        with self.connect() as db:
            rows = db.execute(
                "SELECT sample, verdict, comment, created, updated FROM verdicts WHERE reviewer = ?", (reviewer,)
            ).fetchall()
        return {s: {"verdict": v, "comment": c, "created": t0, "updated": t1} for s, v, c, t0, t1 in rows}

    def all(self) -> list[dict[str, Any]]:
        """Every verdict of every reviewer."""
        with self.connect() as db:
            rows = db.execute("SELECT sample, reviewer, verdict, comment, created, updated FROM verdicts").fetchall()
        keys = ("sample", "reviewer", "verdict", "comment", "created", "updated")
        return [dict(zip(keys, r)) for r in rows]
