"""The error a route answers with (a status and a message that names no file), and query-string readers."""

from __future__ import annotations

import math
from typing import overload

__all__ = ["HttpError", "Query", "query_int", "query_one", "query_window"]

Query = dict[str, list[str]]


class HttpError(Exception):
    """Answered as JSON ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def query_one(query: Query, key: str, default: str | None = None) -> str:
    """The one value of ``key`` (400 when missing without a default, or given twice)."""
    values = query.get(key)
    if not values:
        if default is None:
            raise HttpError(400, f"missing query parameter '{key}'")
        return default
    if len(values) > 1:
        raise HttpError(400, f"query parameter '{key}' given more than once")
    return values[0]


@overload
def query_int(query: Query, key: str, default: int) -> int: ...
@overload
def query_int(query: Query, key: str, default: None) -> int | None: ...
def query_int(query: Query, key: str, default: int | None) -> int | None:
    """``key`` as an integer (``default`` when missing)."""
    if default is None and key not in query:
        return None
    raw = query_one(query, key, None if default is None else str(default))
    try:
        return int(raw)
    except ValueError:
        raise HttpError(400, f"'{key}' must be an integer, got {raw[:40]!r}") from None


def query_window(query: Query) -> tuple[float, float] | None:
    """``window=lo,hi`` (finite, lo < hi), or None when not given."""
    if "window" not in query:
        return None
    raw = query_one(query, "window")
    try:
        lo, hi = (float(v) for v in raw.split(","))
    except ValueError:
        raise HttpError(400, f"window must be 'lo,hi' (numbers), got {raw[:40]!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise HttpError(400, "window must be finite numbers with lo < hi")
    return lo, hi
