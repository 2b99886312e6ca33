"""``logharbor migrate``'s SQL (``cli/migrate.py``): what an embedded store holds, read a day's
minutes at a time so the copy into a ClickHouse store can resume where it stopped."""

from __future__ import annotations

from logharbor.server.engine.store.rows import COLUMNS
from logharbor.server.engine.store.sqlsafe import quote_identifier

__all__ = ["chunk_sql", "minutes_sql"]


def minutes_sql(table: str) -> str:
    """Rows (``n``) per minute (``m``, epoch seconds) and its ``day`` of ``table`` (unquoted name)."""
    return (f"SELECT toString(toDate(timestamp)) AS day, toUnixTimestamp(toStartOfMinute(timestamp)) AS m, "  # noqa: S608
            f"count() AS n FROM {quote_identifier(table)} GROUP BY day, m ORDER BY day, m")


def chunk_sql(table: str) -> str:
    """The rows of ``[{lo}, {hi})`` (ns) of ``table`` in the logs table's column order (tier-only
    columns left out)."""
    columns = ", ".join(quote_identifier(c) for c in COLUMNS)
    return (f"SELECT {columns} FROM {quote_identifier(table)} "  # noqa: S608 - quoted names
            "WHERE timestamp >= fromUnixTimestamp64Nano({lo:Int64}, 'UTC') "
            "AND timestamp < fromUnixTimestamp64Nano({hi:Int64}, 'UTC')")
