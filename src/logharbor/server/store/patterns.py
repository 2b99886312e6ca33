"""The ``patterns`` table: one row per (tenant, service, pattern_id), first/last seen over all time.

Records carry their ``pattern_id`` in the logs table (issue #15, docs/patterns.md). This table
keeps what a query window cannot know: when a pattern was first seen, how many records it has
had, its current template and a sample message. It is an ``AggregatingMergeTree`` fed from two
sides:

- a materialized view on the hot logs table adds counts, first/last seen and a sample for every
  insert (it runs inside the insert, so the insert's deduplication token covers it: a batch
  replayed after a crash is counted once);
- the batcher writes a *template row* (count 0) whenever the miner creates a cluster or
  generalizes its template; ``updated`` orders them, so readers take ``argMax(template, updated)``.

Rows of one key are only merged eventually, so every read groups (``pattern_info`` does).
Retention and delete-by-query do not lower the counts: they are counts at ingest.
"""

# SQL here is built from identifiers quoted by store/sqlsafe.py; every value is a parameter.
# ruff: noqa: S608
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

# the logs table column and its migration live with the other migrations
from logharbor.server.store.migrations import COLUMN_MIGRATIONS, EXACT_COLUMN, PATTERN_COLUMN, logs_migrations
from logharbor.server.store.sqlsafe import quote_identifier

__all__ = ["COLUMN_MIGRATIONS", "EXACT_COLUMN", "PATTERN_COLUMN", "first_seen_ns", "logs_migrations",
           "missing_templates", "pattern_info", "patterns_ddl", "patterns_table_name", "template_rows"]



class _Reader(Protocol):
    def query(self, sql: str, params: Mapping[str, Any], *, settings: Mapping[str, Any] | None = None
              ) -> list[dict[str, Any]]: ...


def patterns_table_name(logs_table_name: str) -> str:
    """``patterns`` beside a logs table called ``logs``; ``<table>_patterns`` beside any other."""
    return "patterns" if logs_table_name == "logs" else f"{logs_table_name}_patterns"


def patterns_ddl(logs_local: str, patterns_local: str, *, engine: str = "AggregatingMergeTree",
                 on_cluster: str = "", settings: str = "non_replicated_deduplication_window = 10000"
                 ) -> list[str]:
    """The patterns table and the view that feeds it from inserts into ``logs_local``."""
    target = quote_identifier(patterns_local)
    view = quote_identifier(patterns_local + "_mv")
    source = quote_identifier(logs_local)
    table = (
        f"CREATE TABLE IF NOT EXISTS {target}{on_cluster} ("
        "tenant LowCardinality(String), service LowCardinality(String), pattern_id String, "
        "template SimpleAggregateFunction(anyLast, Nullable(String)), "
        "updated SimpleAggregateFunction(max, DateTime64(3, 'UTC')), "
        "first_seen SimpleAggregateFunction(min, DateTime64(9, 'UTC')), "
        "last_seen SimpleAggregateFunction(max, DateTime64(9, 'UTC')), "
        "count SimpleAggregateFunction(sum, UInt64), "
        "sample SimpleAggregateFunction(any, String) CODEC(ZSTD(3))"
        f") ENGINE = {engine} ORDER BY (tenant, service, pattern_id)"
        + (f" SETTINGS {settings}" if settings else ""))
    mv = (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {view}{on_cluster} TO {target} AS "
        "SELECT tenant, service, pattern_id, CAST(NULL AS Nullable(String)) AS template, "
        "toDateTime64(0, 3, 'UTC') AS updated, min(timestamp) AS first_seen, "
        "max(timestamp) AS last_seen, count() AS count, any(message) AS sample "
        f"FROM {source} WHERE pattern_id != '' GROUP BY tenant, service, pattern_id")
    return [table, mv]


def template_rows(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """JSONEachRow for template rows: keys tenant, service, pattern_id, template, updated (ms),
    timestamp (the record's, as store text) and sample; count is 0."""
    import orjson

    out = []
    for r in rows:
        out.append(orjson.dumps({
            "tenant": r.get("tenant") or "", "service": r.get("service") or "",
            "pattern_id": r["pattern_id"], "template": r["template"],
            "updated": f"{r['updated'] / 1000:.3f}", "first_seen": r["timestamp"],
            "last_seen": r["timestamp"], "count": 0, "sample": r.get("sample") or ""}))
    return b"\n".join(out)


def missing_templates(store: _Reader, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The template rows (as given to :func:`template_rows`) the patterns table does not hold.

    A row is there when its key has that template, or a row ``updated`` at or after it (the
    table aggregates a key's rows and keeps the latest ``updated``, so a merge cannot hide a
    stored row; an insert deduplicated by its token stored the same template earlier).
    """
    if not rows:
        return []
    table = quote_identifier(patterns_table_name(store.table_name))  # type: ignore[attr-defined]
    found = {(r["tenant"], r["service"], r["pattern_id"]): (int(r["u"]), set(r["t"])) for r in store.query(
        "SELECT tenant, service, pattern_id, toInt64(toUnixTimestamp64Milli(max(updated))) AS u, "
        f"groupUniqArray(template) AS t FROM {table} WHERE pattern_id IN {{ids:Array(String)}} "
        "GROUP BY tenant, service, pattern_id",
        {"ids": sorted({str(r["pattern_id"]) for r in rows})})}
    absent = []
    for r in rows:
        updated, templates = found.get((r.get("tenant") or "", r.get("service") or "", r["pattern_id"]),
                                       (-1, set()))
        if r.get("template") not in templates and updated < int(r["updated"]):
            absent.append(r)
    return absent


_INNER = ("SELECT tenant, service, pattern_id, argMax(template, updated) AS tpl, min(first_seen) AS f, "
          "max(last_seen) AS l, toUInt64(sum(count)) AS n, any(sample) AS smp FROM {table}")
_OUTER = ("SELECT tenant, service, pattern_id, ifNull(tpl, '') AS template, "
          "formatDateTime(f, '%Y-%m-%dT%H:%i:%S.%fZ', 'UTC') AS first_seen, "
          "formatDateTime(l, '%Y-%m-%dT%H:%i:%S.%fZ', 'UTC') AS last_seen, n AS count, smp AS sample, "
          "toInt64(toUnixTimestamp64Nano(f)) AS first_seen_ns FROM ({inner}) ORDER BY n DESC, pattern_id")


def pattern_info(store: Any, *, tenant: str | None = None, service: str | None = None,
                 pattern_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Merged rows of the patterns table: tenant, service, pattern_id, template, first_seen,
    last_seen (RFC 3339), count, sample, first_seen_ns. Filters are optional; values are params."""
    where, params = [], {}
    if tenant is not None:
        where.append("tenant = {tenant:String}")
        params["tenant"] = tenant
    if service is not None:
        where.append("service = {service:String}")
        params["service"] = service
    if pattern_ids is not None:
        where.append("pattern_id IN {ids:Array(String)}")
        params["ids"] = list(pattern_ids)
    inner = _INNER.replace("{table}", quote_identifier(patterns_table_name(store.table_name)))
    if where:
        inner += " WHERE " + " AND ".join(where)
    inner += " GROUP BY tenant, service, pattern_id"
    rows = store.query(_OUTER.replace("{inner}", inner), params)
    for row in rows:
        row["count"] = int(row["count"])
        row["first_seen_ns"] = int(row["first_seen_ns"])
    return rows


def first_seen_ns(store: Any, tenant: str, service: str, pattern_id: str) -> int | None:
    """When (tenant, service, pattern_id) was first seen, ns since the epoch; None if never."""
    rows = pattern_info(store, tenant=tenant, service=service, pattern_ids=[pattern_id])
    return rows[0]["first_seen_ns"] if rows else None

