"""The ``new_pattern`` condition: a message template a service has never logged before.

Each evaluation runs ``<rule query> AND level:(WARN OR ERROR OR FATAL) | patterns`` over the
rule's window: one row per (service, pattern) of the matching records, with the pattern's
**all-time** ``first_seen`` from the patterns table. A pattern whose ``first_seen`` is inside the
window is new: it gets an alert of its own (group ``service``, ``pattern_id``), naming the
template, a sample message and the count. When ``first_seen`` leaves the window, the pattern is
no longer new and its alert resolves.

A service is still **learning** while its own first pattern is younger than ``learning``
(default 24h): everything a new service logs is new, and so is everything an existing service
logs right after logharbor started mining patterns. Those services do not alert.
"""

from __future__ import annotations

from typing import Any

from logharbor.server.engine.store.sql.alerts import service_first_seen_sql
from logharbor.server.features.query import CompiledQuery, QueryError, TimeParseError, parse, parse_time_ns
from logharbor.server.features.query import ast as qast

from .conditions import Condition, GroupResult, duration_ns

__all__ = ["LEVELS", "PATTERN_GROUP", "new_pattern_query", "new_pattern_results"]

LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
PATTERN_GROUP = ("service", "pattern_id")


def new_pattern_query(query: qast.Query, cond: Condition) -> qast.Query:
    """The rule's filter, at ``min_level`` or above, piped into ``| patterns``."""
    if any(not isinstance(p, qast.Where) for p in query.pipes):
        raise ValueError("query: a new_pattern rule takes a filter only (and '| where')")
    levels = LEVELS[LEVELS.index(cond.min_level or "WARN"):]
    try:
        level = parse("level:(" + " OR ".join(levels) + ")").filter
        patterns = parse("* | patterns").pipes
    except QueryError as exc:  # a server without pattern mining
        raise ValueError(f"condition: new_pattern needs the '| patterns' pipe ({exc.message})") from None
    both = level if isinstance(query.filter, qast.MatchAll) else qast.And((query.filter, level))
    return qast.Query(both, (*query.pipes, *patterns))


def _ns(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return parse_time_ns(value if isinstance(value, str | int) else str(value))
    except (TimeParseError, ValueError):
        return None


def _service_first_seen(run_query: Any, patterns_table: str, services: list[str],
                        scope: tuple[str, dict[str, object]] | None) -> dict[str, int]:
    """Each service's oldest pattern (min ``first_seen`` over the patterns table), in ns."""
    params: dict[str, object] = {"lh_services": services}
    if scope is not None:  # the patterns table has the tenant and service columns scopes name
        params.update(scope[1])
    rows = run_query(service_first_seen_sql(patterns_table, scope[0] if scope is not None else None), params)
    return {str(r["service"]): int(r["first_ns"]) for r in rows if r.get("first_ns") is not None}


def new_pattern_results(compiled: CompiledQuery, cond: Condition, run_query: Any,
                        window: tuple[int, int], *, scope: tuple[str, dict[str, object]] | None,
                        patterns_table: str) -> list[GroupResult]:
    """One active group per pattern first seen in ``window`` ([start, end) in ns), in services
    past their learning; ``compiled`` is the rule's :func:`new_pattern_query`, compiled.

    ``patterns_table`` is the quoted name of the logs table's patterns table.
    """
    start, end = window
    fresh = []
    for row in run_query(compiled.sql, compiled.params):
        first = _ns(row.get("first_seen"))
        if first is not None and start <= first < end and row.get("pattern_id"):
            fresh.append((row, first))
    if not fresh:
        return []
    learning = duration_ns(cond.learning or "24h", allow_zero=True)
    services = sorted({str(row.get("service") or "") for row, _ in fresh})
    oldest = _service_first_seen(run_query, patterns_table, services, scope) if learning else {}
    out = []
    for row, first in fresh:
        service = str(row.get("service") or "")
        if learning and oldest.get(service, first) > end - learning:
            continue  # the service itself is younger than the learning period
        labels = {"service": service, "pattern_id": str(row["pattern_id"])}
        count = float(row.get("count") or 0)
        details = {"template": row.get("template") or "", "sample": row.get("sample") or "",
                   "count": int(count), "first_seen": row.get("first_seen")}
        out.append(GroupResult(labels, count, True, details))
    return out
