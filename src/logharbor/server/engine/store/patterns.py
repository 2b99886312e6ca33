"""The ``patterns`` table: one row per stored id (tenant, service, pattern_id), over all time.

Records carry the id of their masked template in ``logs.pattern_id`` (docs/patterns.md). This
table keeps, per stored id, what a query window cannot know: when it was first seen, how many
records it has had, a sample message, and which *group* it belongs to now (``group_id``, and the
group's ``template``). It is an ``AggregatingMergeTree`` fed from two sides:

- a materialized view on the hot logs table adds counts, first/last seen and a sample for every
  insert (it runs inside the insert, so the insert's deduplication token covers it: a batch
  replayed after a crash is counted once);
- the batcher writes an *assignment row* (count 0) whenever the miner puts a stored id in a group
  or the group's template changes; ``updated`` orders them, so readers take
  ``argMax(group_id, updated)`` and ``argMax(template, updated)``. Rows written by the first
  release have no ``group_id`` (NULL): such an id is its own group until it is adopted
  (server/features/patterns/upkeep.py).

Rows of one key are only merged eventually, so every read groups (``pattern_info`` does).
Retention and delete-by-query do not lower the counts: they are counts at ingest.
"""

# SQL here is built from identifiers quoted by store/sqlsafe.py; every value is a parameter.
# ruff: noqa: S608
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

# the logs table column and its migration live with the other migrations
from logharbor.server.engine.store.migrations import (
    COLUMN_MIGRATIONS,
    EXACT_COLUMN,
    PATTERN_COLUMN,
    Migration,
    add_column,
    logs_migrations,
)
from logharbor.server.engine.store.sqlsafe import quote_identifier
from logharbor.types import Row, StoreRow

if TYPE_CHECKING:
    from logharbor.server.engine.store.base import Store

__all__ = ["COLUMN_MIGRATIONS", "EXACT_COLUMN", "PATTERN_COLUMN", "first_seen_ns", "group_ids",
           "logs_migrations", "missing_templates", "pattern_info", "patterns_ddl", "patterns_migrations",
           "patterns_table_name", "resolve_groups", "template_rows"]



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
        "sample SimpleAggregateFunction(any, String) CODEC(ZSTD(3)), "
        f"{_GROUP_COLUMN}"
        f") ENGINE = {engine} ORDER BY (tenant, service, pattern_id)"
        + (f" SETTINGS {settings}" if settings else ""))
    mv = (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {view}{on_cluster} TO {target} AS "
        "SELECT tenant, service, pattern_id, CAST(NULL AS Nullable(String)) AS template, "
        "toDateTime64(0, 3, 'UTC') AS updated, min(timestamp) AS first_seen, "
        "max(timestamp) AS last_seen, count() AS count, any(message) AS sample "
        f"FROM {source} WHERE pattern_id != '' GROUP BY tenant, service, pattern_id")
    return [table, mv]


#: the group a stored id belongs to (added to tables made by the first release)
_GROUP_COLUMN = "group_id SimpleAggregateFunction(anyLast, Nullable(String))"


def patterns_migrations(patterns_table: str, on_cluster: str = "") -> list[Migration]:
    """Bring a patterns table made by the first release up to date (run only when missing, like
    the other migrations; a Distributed table over the patterns takes it too)."""
    return [add_column(patterns_table, _GROUP_COLUMN, on_cluster)]


def template_rows(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """JSONEachRow for assignment rows: keys tenant, service, pattern_id (the stored id), group_id,
    template (the group's), updated (ms), timestamp (a record's, as store text) and sample; count
    is 0."""
    import orjson

    out = []
    for r in rows:
        out.append(orjson.dumps({
            "tenant": r.get("tenant") or "", "service": r.get("service") or "",
            "pattern_id": r["pattern_id"], "group_id": r.get("group_id") or r["pattern_id"],
            "template": r["template"],
            "updated": f"{r['updated'] / 1000:.3f}", "first_seen": r["timestamp"],
            "last_seen": r["timestamp"], "count": 0, "sample": r.get("sample") or ""}))
    return b"\n".join(out)


def missing_templates(store: Store, rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The template rows (as given to :func:`template_rows`) the patterns table does not hold.

    A row is there when its key has that template, or a row ``updated`` at or after it (the
    table aggregates a key's rows and keeps the latest ``updated``, so a merge cannot hide a
    stored row; an insert deduplicated by its token stored the same template earlier).
    """
    if not rows:
        return []
    table = quote_identifier(store.patterns_name)
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


_PER_ID = ("SELECT tenant, service, pattern_id, argMax(group_id, updated) AS g, "
           "argMax(template, updated) AS tpl, max(updated) AS upd, min(first_seen) AS f, "
           "max(last_seen) AS l, sum(count) AS n, "
           "anyIf(sample, sample != '') AS smp FROM {table}")
_PER_GROUP = ("SELECT tenant, service, ifNull(g, pattern_id) AS gid, argMax(tpl, upd) AS gtpl, min(f) AS gf, "
              "max(l) AS gl, toUInt64(sum(n)) AS gn, anyIf(smp, smp != '') AS gsmp FROM ({per_id}) "
              "GROUP BY tenant, service, gid")
_OUTER = ("SELECT tenant, service, gid AS pattern_id, ifNull(gtpl, '') AS template, "
          "formatDateTime(gf, '%Y-%m-%dT%H:%i:%S.%fZ', 'UTC') AS first_seen, "
          "formatDateTime(gl, '%Y-%m-%dT%H:%i:%S.%fZ', 'UTC') AS last_seen, gn AS count, "
          "ifNull(gsmp, '') AS sample, toInt64(toUnixTimestamp64Nano(gf)) AS first_seen_ns "
          "FROM ({per_group}){where} ORDER BY gn DESC, gid")


def pattern_info(store: Store, *, tenant: str | None = None, service: str | None = None,
                 pattern_ids: Sequence[str] | None = None) -> list[Row]:
    """The groups of the patterns table (every stored id counted in its group): tenant, service,
    pattern_id (the group's), template, first_seen, last_seen (RFC 3339), count, sample,
    first_seen_ns. Filters are optional (``pattern_ids`` names groups); values are params."""
    where, params = [], {}
    if tenant is not None:
        where.append("tenant = {tenant:String}")
        params["tenant"] = tenant
    if service is not None:
        where.append("service = {service:String}")
        params["service"] = service
    per_id = _PER_ID.replace("{table}", quote_identifier(patterns_table_name(store.table_name)))
    if where:
        per_id += " WHERE " + " AND ".join(where)
    per_id += " GROUP BY tenant, service, pattern_id"
    outer_where = ""
    if pattern_ids is not None:
        outer_where = " WHERE gid IN {ids:Array(String)}"
        params["ids"] = list(pattern_ids)
    per_group = _PER_GROUP.replace("{per_id}", per_id)
    sql = _OUTER.replace("{per_group}", per_group).replace("{where}", outer_where)
    rows = store.query(sql, params)
    for row in rows:
        row["count"] = int(row["count"])
        row["first_seen_ns"] = int(row["first_seen_ns"])
    return rows


def resolve_groups(store: Store, rows: Sequence[StoreRow],
                   local: Callable[[str, str, str], str | None] | None = None) -> None:
    """Give rows of the logs table (as read) the id of their group instead of the stored one, in
    place: ``local`` (the server's own miner) first, the patterns table for the rest."""
    todo: dict[str, list[StoreRow]] = {}
    for row in rows:
        stored = row.get("pattern_id")
        if not stored:
            continue
        group = local(row.get("tenant") or "", row.get("service") or "", stored) if local else None
        if group is None:
            todo.setdefault(stored, []).append(row)
        else:
            row["pattern_id"] = group
    if not todo:
        return
    for stored, group in group_ids(store, list(todo)).items():
        for row in todo.get(stored, ()):
            row["pattern_id"] = group


def group_ids(store: Store, stored_ids: Sequence[str]) -> dict[str, str]:
    """The group of each stored id that the patterns table assigns one (others are their own)."""
    if not stored_ids:
        return {}
    table = quote_identifier(patterns_table_name(store.table_name))
    rows = store.query(
        f"SELECT pattern_id, assumeNotNull(argMax(group_id, updated)) AS g FROM {table} "
        "WHERE pattern_id IN {ids:Array(String)} GROUP BY tenant, service, pattern_id "
        "HAVING argMax(group_id, updated) IS NOT NULL", {"ids": sorted(set(stored_ids))})
    return {str(r["pattern_id"]): str(r["g"]) for r in rows}


def first_seen_ns(store: Store, tenant: str, service: str, pattern_id: str) -> int | None:
    """When the group (tenant, service, pattern_id) was first seen, ns since the epoch; None if never."""
    rows = pattern_info(store, tenant=tenant, service=service, pattern_ids=[pattern_id])
    return rows[0]["first_seen_ns"] if rows else None

