"""The samples of an expansion folder (from its manifest) and the verdict database.

Verdicts live in ``DIR/review.sqlite`` (SQLite, WAL journal) so that they are
saved the moment they are given and survive a server restart or a crash.  Every
call opens its own connection: the threaded server never shares one between
requests.  A verdict is keyed by (sample id, reviewer); the reviewer is ``""``
when none is named, and a new verdict of the same reviewer on the same sample
replaces the old one (its first timestamp is kept).

A server holds one extra connection open for its lifetime
(:meth:`VerdictStore.hold_open`): SQLite then keeps the WAL and shared-memory
files, so reads still work when the disk fills up (a new connection on a full
disk could not create them); a write that finds the disk full raises
:class:`StoreError` with ``disk_full`` set.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ...datasets.writing import unescape_cell
from ...errors import MedaugError, ParameterError

__all__ = ["DB_NAME", "VERDICTS", "Database", "ReviewSample", "StoreError", "VerdictStore", "read_samples"]

DB_NAME = "review.sqlite"
VERDICTS = ("realistic", "not_realistic")
_REQUIRED = ("case_id", "index", "source_image", "output_image", "params")


class StoreError(MedaugError):
    """The verdict database cannot be read or written; ``disk_full`` when its disk has no space left."""

    def __init__(self, message: str, *, path: str | Path | None = None, disk_full: bool = False) -> None:
        super().__init__(message, path=path)
        self.disk_full = disk_full


@dataclass(frozen=True)
class ReviewSample:
    """One manifest row: an augmented file and the original it came from."""

    id: str  # "{case_id}:{index}"
    case_id: str
    index: int
    original: Path | None  # source image (may lie outside DIR: the input dataset) as the manifest lists it, else the
    # --include-originals copy inside DIR; None when neither (an --anonymize-ids expansion lists no source)
    augmented: Path  # output image, always inside DIR
    history: list[dict[str, Any]] = field(default_factory=list)
    original_label: Path | None = None  # source label map, as listed in the manifest
    augmented_label: Path | None = None  # output label map, inside DIR

    @property
    def transforms(self) -> list[dict[str, Any]]:
        """The applied transforms (check reports left out)."""
        return [h for h in self.history if isinstance(h, dict) and not h.get("check") and "name" in h]


def read_samples(directory: str | Path) -> dict[str, ReviewSample]:
    """Read ``DIR/manifest.csv`` into ``{sample id: ReviewSample}`` (manifest order).

    An output path that leaves ``DIR`` (a tampered manifest) is an error: the
    server serves augmented files from ``DIR`` only.  A row without a source (an
    ``--anonymize-ids`` expansion) has the ``--include-originals`` copy of its
    case as original, or none.
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
            outputs = {}
            for column in ("output_image", "output_label"):
                outputs[column] = (root / row[column]).resolve() if row.get(column) else None
                if outputs[column] is not None and not outputs[column].is_relative_to(root):
                    raise ParameterError(f"line {line}: {column} {row[column]!r} lies outside the folder", path=manifest)
            if outputs["output_image"] is None:
                raise ParameterError(f"line {line}: output_image is empty", path=manifest)
            sources = {c: _source(root, row.get(c) or "") for c in ("source_image", "source_label")}
            sid = f"{row['case_id']}:{index}"
            samples[sid] = ReviewSample(sid, row["case_id"], index, sources["source_image"], outputs["output_image"],
                                        history, sources["source_label"], outputs["output_label"])
    copies = {s.case_id: s for s in samples.values() if s.index < 0}  # --include-originals: the original, in DIR
    for sid, s in samples.items():
        if s.original is None and s.case_id in copies:
            samples[sid] = replace(s, original=copies[s.case_id].augmented,
                                   original_label=copies[s.case_id].augmented_label)
    return samples


def _source(root: Path, listed: str) -> Path | None:
    """A manifest's source path, resolved (relative to ``root`` when relative); None when empty."""
    if not listed:
        return None
    source = Path(listed)
    return (source if source.is_absolute() else root / source).resolve()


class Database:
    """``DIR/review.sqlite``: its tables, a fresh connection per call, and the connection a server holds open.

    Tables: ``verdicts`` (see :class:`VerdictStore`), ``turing_deck`` and
    ``turing_answers`` (see :class:`medaug.preview.review.turing.TuringStore`).
    """

    SCHEMA = (
        """CREATE TABLE IF NOT EXISTS verdicts (
            sample TEXT NOT NULL,
            reviewer TEXT NOT NULL DEFAULT '',
            verdict TEXT NOT NULL CHECK (verdict IN ('realistic', 'not_realistic')),
            comment TEXT NOT NULL DEFAULT '',
            created REAL NOT NULL,
            updated REAL NOT NULL,
            PRIMARY KEY (sample, reviewer))""",
        """CREATE TABLE IF NOT EXISTS turing_deck (
            reader TEXT NOT NULL,
            position INTEGER NOT NULL,
            token TEXT NOT NULL UNIQUE,
            item TEXT NOT NULL,
            PRIMARY KEY (reader, position),
            UNIQUE (reader, item))""",
        """CREATE TABLE IF NOT EXISTS turing_answers (
            reader TEXT NOT NULL,
            item TEXT NOT NULL,
            answer TEXT NOT NULL CHECK (answer IN ('real', 'augmented')),
            confidence INTEGER NOT NULL CHECK (confidence BETWEEN 1 AND 5),
            created REAL NOT NULL,
            updated REAL NOT NULL,
            PRIMARY KEY (reader, item))""",
    )

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory).resolve() / DB_NAME
        for attempt in range(50):  # two servers started at once: switching to WAL takes a lock busy_timeout ignores
            try:
                with self.connect() as db:  # StoreError (a MedaugError naming the file) when it cannot be opened
                    if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                        db.execute("PRAGMA journal_mode=WAL")
                    for statement in self.SCHEMA:
                        db.execute(statement)
                break
            except StoreError as exc:
                if exc.disk_full or "locked" not in str(exc) or attempt == 49:
                    raise
                time.sleep(0.1)
        self._held: sqlite3.Connection | None = None

    def hold_open(self) -> Database:
        """Keep one connection open until :meth:`close`, so that reads survive a full disk (see the module doc)."""
        if self._held is None:
            self._held = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False)
            self._held.execute("SELECT count(*) FROM verdicts").fetchone()  # opens the WAL and shared memory
        return self

    def close(self) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh connection for one request (committed on success, always closed).

        Raises
        ------
        StoreError
            When SQLite fails; ``disk_full`` is set when the disk (or quota) is full.
        """
        try:
            db = sqlite3.connect(self.path, timeout=10.0)
            try:
                db.execute("PRAGMA busy_timeout=10000")
                db.execute("PRAGMA synchronous=FULL")  # an answer acknowledged with 200 is on disk (WAL synced per commit)
                with db:
                    yield db
            finally:
                db.close()
        except sqlite3.Error as exc:
            full = getattr(exc, "sqlite_errorname", "") == "SQLITE_FULL" or "disk is full" in str(exc)
            what = "the disk holding it is full" if full else f"SQLite: {exc}"
            raise StoreError(f"cannot use the verdict database ({what})", path=self.path, disk_full=full) from None

    def upsert(self, table: str, key: dict[str, Any], values: dict[str, Any]) -> float:
        """Insert a row, or replace the ``values`` of the row with this ``key`` (its ``created`` time kept).

        Table and column names come from this package's code, never from a request.  Returns the time stored.
        """
        now = time.time()
        columns = [*key, *values, "created", "updated"]
        updates = ", ".join(f"{c} = excluded.{c}" for c in [*values, "updated"])
        with self.connect() as db:
            db.execute(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
                       f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}",
                       (*key.values(), *values.values(), now, now))
        return now

    def journal_mode(self) -> str:
        with self.connect() as db:
            return str(db.execute("PRAGMA journal_mode").fetchone()[0])


class VerdictStore(Database):
    """Verdicts of one review folder, in ``DIR/review.sqlite``."""

    def put(self, sample: str, verdict: str, comment: str = "", reviewer: str = "") -> dict[str, Any]:
        if verdict not in VERDICTS:
            raise ParameterError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
        now = self.upsert("verdicts", {"sample": sample, "reviewer": reviewer}, {"verdict": verdict, "comment": comment})
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
