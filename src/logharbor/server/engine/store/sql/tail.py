"""The live tail's SQL: one query per round over a batch of rows passed as parameters."""

from __future__ import annotations

from logharbor.server.engine.store.attributes import PROMOTED, promoted_sql
from logharbor.types import SqlParams

__all__ = ["BATCH_FILE", "BATCH_ROWS", "BATCH_TABLE", "received_sql", "round_sql"]

#: the table expression a tail filter runs against: one round's rows, as the engine reads them
#: (the connection reads an attributes object into the String column as its text, byte for byte)
BATCH_TABLE = "format(JSONEachRow, {tail_structure:String}, {tail_rows:String})"
#: the same rows read from a file (the embedded store's ``run_on_rows`` puts them in one in its
#: own memory, memfd): a parameter is escaped by the caller, unescaped and parsed as a literal by
#: the engine, which made it four times dearer per row than the rows themselves
BATCH_FILE = "file({tail_file:String}, JSONEachRow, {tail_structure:String})"
#: the batch as the logs table would hold it: the structure is the table's (DESCRIBE), whose
#: promoted ``attr_<key>`` columns are computed there (ALIAS of a MATERIALIZED Tuple) and absent
#: from the rows, so they are computed here, each the same text form, and a filter on them
#: matches as a search does
_PROMOTE = ", ".join(promoted_sql())
BATCH_ROWS = f"(SELECT * REPLACE ({_PROMOTE}) FROM {BATCH_TABLE})" if PROMOTED else BATCH_TABLE  # noqa: S608


def round_sql(conditions: list[str | None], scope: tuple[str, SqlParams] | None
              ) -> tuple[str, SqlParams]:
    """One query over a batch: rows matching any condition, a flag ``__tail_m<i>`` per condition
    (None: every row), in arrival order; the scope's fragment and parameters are ANDed in.

    The row number is taken before filtering, so it also says which write a row came from.
    Conditions are the query compiler's output (every user value a ``{…:Type}`` parameter).
    """
    params: SqlParams = {}
    flags = [f"({condition or '1'}) AS __tail_m{i}" for i, condition in enumerate(conditions)]
    where = " OR ".join(f"__tail_m{i}" for i in range(len(conditions)))
    if scope is not None:
        where = f"({where}) AND ({scope[0]})"
        params.update(scope[1])
    sql = (f"SELECT * FROM (SELECT *, rowNumberInAllBlocks() AS __tail_row, {', '.join(flags)} "  # noqa: S608
           f"FROM {BATCH_ROWS}) WHERE {where} ORDER BY __tail_row")
    return sql, params


def received_sql(hot_table: str) -> str:
    """Rows of ``hot_table`` received in ``({lo}, {hi}]`` (ns), oldest first, at most ``{n}``:
    what servers beside this one stored (the tail feed; the table has a minmax index on it)."""
    return (f"SELECT * FROM {hot_table} "  # noqa: S608
            "WHERE observed_timestamp > fromUnixTimestamp64Nano({lo:Int64}, 'UTC') "
            "AND observed_timestamp <= fromUnixTimestamp64Nano({hi:Int64}, 'UTC') "
            "ORDER BY observed_timestamp LIMIT {n:UInt64}")
