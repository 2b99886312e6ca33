"""Clock offsets' SQL (``features/traces/clock.py``): the history table of estimates, the request
records an estimate reads, appending estimates and reading them back. Table names arrive quoted
(``sqlsafe``); every value is a parameter."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from logharbor.server.engine.store.sqlsafe import quote_identifier, quote_string
from logharbor.types import SqlParams

__all__ = ["HISTORY_WHERE", "history_ddl", "insert_sql", "latest_in_window_sql", "latest_where",
           "records_sql", "select_sql"]


def history_ddl(table: str, keep_days: int) -> str:
    """The history of estimates: one row per (estimate time, tenant, clock), kept ``keep_days``."""
    return (f"CREATE TABLE IF NOT EXISTS {table} (at DateTime64(3, 'UTC'), "
            f"tenant LowCardinality(String), clock String, layer LowCardinality(String), host String, "
            f"instance String, service String, reference String, offset_ms Nullable(Float64), "
            f"uncertainty_ms Nullable(Float64), requests UInt32, consistent UInt8) "
            f"ENGINE = MergeTree PARTITION BY toYYYYMM(at) ORDER BY (tenant, clock, at) "
            f"TTL toDateTime(at) + INTERVAL {int(keep_days)} DAY")


def records_sql(logs: str, columns: Sequence[str], attributes: Sequence[str] = ()) -> str:
    """The newest ``{n}`` request records (with a duration and an id) of ``[{lo}, {hi})`` (ns):
    ``columns``, the time as ``ts_ns`` and each of ``attributes`` (top-level keys) as ``attr_<key>``:
    the text form of the value (a string's content, a number's text, NULL when absent or null),
    extracted from the attributes text in the engine, so whole records are not read back (9×)."""
    cols = ", ".join(["toUnixTimestamp64Nano(`timestamp`) AS ts_ns", *(quote_identifier(c) for c in columns),
                      *(f"JSONExtract(`attributes`, {quote_string(a)}, 'Nullable(String)') "
                        f"AS {quote_identifier('attr_' + a)}" for a in attributes)])
    return (f"SELECT {cols} FROM {logs} "  # noqa: S608
            "WHERE `timestamp` >= fromUnixTimestamp64Nano({lo:Int64}, 'UTC') "
            "AND `timestamp` < fromUnixTimestamp64Nano({hi:Int64}, 'UTC') "
            "AND `http_duration_ms` IS NOT NULL AND (`trace_id` != '' OR `request_id` != '') "
            "ORDER BY `timestamp` DESC LIMIT {n:UInt32}")


def insert_sql(table: str, types: Mapping[str, str], rows: Sequence[Mapping[str, Any]], *,
               ns_column: str) -> tuple[str, SqlParams]:
    """Append ``rows`` (values by column of ``types``; ``ns_column`` in ns) as parameters."""
    params: SqlParams = {}
    values = []
    for i, row in enumerate(rows):
        exprs = []
        for j, (column, kind) in enumerate(types.items()):
            name = f"c{j}_{i}"
            params[name] = row[column]
            exprs.append(f"fromUnixTimestamp64Nano({{{name}:Int64}}, 'UTC')" if column == ns_column
                         else f"{{{name}:{kind}}}")
        values.append("SELECT " + ", ".join(exprs))
    return f"INSERT INTO {table} ({', '.join(types)}) " + " UNION ALL ".join(values), params


def select_sql(table: str, columns: Sequence[str], where: str, limit: int) -> str:
    """The newest ``limit`` estimates matching ``where`` (a cap keeps the latest, never the
    oldest), their time as ``at_ms``, in (time, tenant, clock) order."""
    newest = (f"SELECT toUnixTimestamp64Milli(at) AS at_ms, {', '.join(columns)} FROM {table} "  # noqa: S608
              f"WHERE {where} ORDER BY at DESC, tenant DESC, clock DESC LIMIT {int(limit)}")
    return f"SELECT * FROM ({newest}) ORDER BY at_ms, tenant, clock"  # noqa: S608


#: the estimates of ``[{lo}, {hi})`` (ns): the history the clock-offset API shows
HISTORY_WHERE = ("at >= fromUnixTimestamp64Nano({lo:Int64}, 'UTC') "
                 "AND at < fromUnixTimestamp64Nano({hi:Int64}, 'UTC')")


def latest_where(table: str, tenants: str | None = None) -> str:
    """The condition holding each tenant's latest estimate of the last hour; ``tenants``: a
    condition on the ``tenant`` column (placeholders) read inside, so a scoped read looks at its
    own tenant's estimates only."""
    inside = f" AND ({tenants})" if tenants else ""
    return (f"(tenant, at) IN (SELECT tenant, max(at) FROM {table} "  # noqa: S608
            f"WHERE at >= now64(3) - toIntervalHour(1){inside} GROUP BY tenant)")


def latest_in_window_sql(table: str, scope: str | None) -> str:
    """Each (tenant, clock)'s latest estimate with an offset in ``[{lh_from}, {lh_to})`` (ns),
    within ``scope`` (a condition on the table's tenant and service columns) when given."""
    where = ("at >= fromUnixTimestamp64Nano({lh_from:Int64}, 'UTC') "
             "AND at < fromUnixTimestamp64Nano({lh_to:Int64}, 'UTC') AND offset_ms IS NOT NULL")
    if scope is not None:
        where += f" AND ({scope})"
    return (f"SELECT tenant, clock, layer, host, instance, reference, offset_ms, uncertainty_ms "  # noqa: S608
            f"FROM {table} WHERE {where} ORDER BY at DESC LIMIT 1 BY tenant, clock")
