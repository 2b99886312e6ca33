"""Retention's SQL outside the tiers (engine/store/tiers.py): the mover's time conditions, and a
delete-by-query's scrub of quarantined WAL lines, read by the engine as a table so the filter means
what it means in a search."""

from __future__ import annotations

from logharbor.server.engine.store.attributes import promoted_sql
from logharbor.server.engine.store.sql.tail import BATCH_TABLE
from logharbor.server.engine.store.sqlsafe import quote_identifier

__all__ = ["BEFORE_CUTOFF", "FROM_START", "quarantine_match_sql"]

#: records older than a rule's cutoff ``{t_before}`` (ns): what the mover moves, samples or deletes
BEFORE_CUTOFF = "timestamp < fromUnixTimestamp64Nano({t_before:Int64}, 'UTC')"
#: records from ``{t_from}`` (ns) on: the lower end of a step the mover takes
FROM_START = "timestamp >= fromUnixTimestamp64Nano({t_from:Int64}, 'UTC')"


def quarantine_match_sql(cond: str, *, line_column: str) -> str:
    """The ``line_column`` of each JSONEachRow line that matches the compiled ``cond``: the lines
    are the ``tail_rows`` parameter read with ``tail_structure`` (the table's stored columns), the
    live tail's BATCH_TABLE, so a store runs it with ``run_on_rows`` (through ClickHouse the lines
    go as external data, not as a form field capped at 128 KiB); the promoted ``attr_<key>``
    columns a condition may name are computed from the attributes text as the table computes
    them."""
    line = quote_identifier(line_column)
    return (f"SELECT {line} AS i FROM (SELECT *, {', '.join(promoted_sql())} FROM {BATCH_TABLE}) "  # noqa: S608
            f"WHERE {cond}")
