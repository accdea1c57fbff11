"""The visual Turing test: originals and augmented copies, mixed and unlabelled, each judged "real" or "augmented".

Items: every augmented sample of the manifest (index >= 0) and one original
per case: the ``--include-originals`` copy inside the folder when there is one,
else the source image the manifest lists (left out, and reported, when that
file is missing).

Each reader has their own deck: every item once, in an order drawn from the
operating system's random source, each under a random token.  The page only
ever sees tokens; what lies behind a token (original or augmented, case id,
file) stays on the server.  The deck is stored, so a reader continues where
they stopped after a restart; items added to the manifest later are appended
in random order.  An answer is keyed by (reader, item); answering again
replaces it.  Readers get no feedback: the page never learns whether an
answer was right.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ...errors import ParameterError
from .store import Database, ReviewSample

__all__ = ["ANSWERS", "CONFIDENCE", "TuringItem", "TuringStore", "turing_items"]

ANSWERS = ("real", "augmented")
#: Confidence of an answer: 1 (a guess) to 5 (certain).
CONFIDENCE = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class TuringItem:
    """One image of the test."""

    key: str  # "original:CASE" or "augmented:CASE:INDEX"; stored with the answers
    kind: Literal["original", "augmented"]
    case_id: str
    image: Path
    sample_id: str | None  # the manifest sample of an augmented item


def turing_items(samples: dict[str, ReviewSample]) -> tuple[dict[str, TuringItem], list[str]]:
    """The test's items by key, and the case ids whose original image is missing (left out)."""
    items: dict[str, TuringItem] = {}
    originals: dict[str, Path | None] = {}
    for s in samples.values():
        if s.index < 0:  # the --include-originals copy: the original, inside the folder
            originals[s.case_id] = s.augmented
        else:
            items[f"augmented:{s.id}"] = TuringItem(f"augmented:{s.id}", "augmented", s.case_id, s.augmented, s.id)
            originals.setdefault(s.case_id, s.original)
    missing = []
    for case_id, path in originals.items():
        if path is not None and path.exists():
            items[f"original:{case_id}"] = TuringItem(f"original:{case_id}", "original", case_id, path, None)
        else:
            missing.append(case_id)
    return items, missing


class TuringStore(Database):
    """Decks and answers of the Turing test, in ``DIR/review.sqlite``."""

    def deck(self, reader: str, keys: list[str]) -> list[tuple[str, str]]:
        """``[(token, item key)]`` of a reader's deck in order: made on first use, new keys appended."""
        with self.connect() as db:
            rows = db.execute("SELECT token, item FROM turing_deck WHERE reader = ? ORDER BY position",
                              (reader,)).fetchall()
            known = {item for _, item in rows}
            new = [k for k in keys if k not in known]
            if new:
                secrets.SystemRandom().shuffle(new)
                start = len(rows)
                added = [(reader, start + i, secrets.token_urlsafe(12), key) for i, key in enumerate(new)]
                db.executemany("INSERT INTO turing_deck (reader, position, token, item) VALUES (?, ?, ?, ?)", added)
                rows += [(token, key) for _, _, token, key in added]
        wanted = set(keys)
        return [(token, item) for token, item in rows if item in wanted]

    def put(self, reader: str, item: str, answer: str, confidence: int) -> dict[str, Any]:
        if answer not in ANSWERS:
            raise ParameterError(f"answer must be one of {', '.join(ANSWERS)}, got {answer!r}")
        if confidence not in CONFIDENCE:
            raise ParameterError(f"confidence must be an integer from 1 to 5, got {confidence!r}")
        self.upsert("turing_answers", {"reader": reader, "item": item}, {"answer": answer, "confidence": confidence})
        return {"answer": answer, "confidence": confidence}

    def of_reader(self, reader: str) -> dict[str, dict[str, Any]]:
        """``{item key: {answer, confidence}}`` of one reader."""
        with self.connect() as db:
            rows = db.execute("SELECT item, answer, confidence FROM turing_answers WHERE reader = ?",
                              (reader,)).fetchall()
        return {item: {"answer": a, "confidence": c} for item, a, c in rows}

    def all(self) -> list[dict[str, Any]]:
        """Every answer of every reader: reader, item, answer, confidence, created, updated."""
        with self.connect() as db:
            rows = db.execute("SELECT reader, item, answer, confidence, created, updated FROM turing_answers").fetchall()
        keys = ("reader", "item", "answer", "confidence", "created", "updated")
        return [dict(zip(keys, r)) for r in rows]
