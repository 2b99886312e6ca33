"""The trace view's SQL (``features/traces/service.py``): the records of a request, found by the
ids they carry; only the id columns named use their skip index. Every id is a parameter."""

from __future__ import annotations

from logharbor.server.engine.store.rows import COLUMNS
from logharbor.server.engine.store.sqlsafe import quote_identifier
from logharbor.server.engine.store.timebounds import before_end
from logharbor.types import SqlParams

__all__ = ["id_condition", "lookup_sql"]

_SELECT = ", ".join(quote_identifier(c) for c in COLUMNS)


def id_condition(column: str, values: list[str], prefix: str, params: SqlParams) -> str:
    """``column IN (…)`` with each value added to ``params`` as ``<prefix><i>``."""
    names = []
    for i, value in enumerate(values):
        name = f"{prefix}{i}"
        params[name] = value
        names.append(f"{{{name}:String}}")
    return f"{quote_identifier(column)} IN ({', '.join(names)})"


def lookup_sql(table: str, trace_ids: list[str], request_ids: list[str], *, exclude: str,
               exclude_params: SqlParams | None, start_ns: int | None, end_ns: int | None,
               limit: int, scope: tuple[str, SqlParams] | None) -> tuple[str, SqlParams]:
    """Rows of ``table`` with any of the ids (not matching ``exclude``), in ``[start, end)``, in
    scope, oldest first, at most ``limit + 1`` (one more says the answer was cut)."""
    params: SqlParams = dict(exclude_params or {})
    ors = []
    if trace_ids:
        ors.append(id_condition("trace_id", trace_ids, "t", params))
    if request_ids:
        ors.append(id_condition("request_id", request_ids, "r", params))
    where = [f"({' OR '.join(ors)})"]
    if exclude:
        where.append(f"NOT ({exclude})")
    if start_ns is not None:
        params["from_ns"] = start_ns
        where.append("`timestamp` >= fromUnixTimestamp64Nano({from_ns:Int64}, 'UTC')")
    if end_ns is not None:
        params["to_ns"] = end_ns
        where.append(before_end("`timestamp`", "{to_ns:Int64}", end_ns))
    if scope is not None:
        fragment, scope_params = scope
        where.append(f"({fragment})")
        params.update(scope_params)
    sql = (f"SELECT {_SELECT} FROM {table} WHERE {' AND '.join(where)} "  # noqa: S608
           f"ORDER BY `timestamp` ASC LIMIT {int(limit) + 1}")
    return sql, params
