"""Bounds on numbers that come from a request and reach the metadata database or the store.

Python integers are unbounded; SQLite, PostgreSQL and ClickHouse columns are 64-bit. A number
from a path, a query string or a body that is not range-checked where it enters therefore turns
into an ``OverflowError`` (SQLite) or a ``DataError`` (PostgreSQL) deep in a query: a 500 with no
JSON body. Every such parameter is declared with one of these types instead, so FastAPI refuses
it with the JSON error body before any handler runs (a path id out of range is a 404, see
``app._validation_error``). ``tests/server/test_route_params.py`` walks every route of the app
and fails on an integer parameter declared without an upper bound.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

__all__ = ["INT64_MAX", "RowId"]

#: the largest value a signed 64-bit column holds
INT64_MAX = 2**63 - 1

#: an id in a URL path that names a row of the metadata database (autoincrement ids start at 1)
RowId = Annotated[int, Path(ge=1, le=INT64_MAX, description="a row id, from 1 to 2^63-1")]
