"""Alert rules' SQL around the compiled queries (``features/alerts/``): an anomaly rule's windows
as one statement, and when each service's first pattern was seen (new-pattern rules)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from logharbor.types import SqlParams

__all__ = ["PERIOD", "service_first_seen_sql", "union_sql"]

#: the column that says which window (period) a row of :func:`union_sql` belongs to
PERIOD = "_lh_period"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*):")


def union_sql(compiled: Sequence[tuple[int, str, SqlParams]]) -> tuple[str, SqlParams]:
    """``[(period, sql, params)]`` → one statement whose rows carry ``_lh_period``.

    Each compiled query numbers its placeholders from ``p0``; they are renamed ``w<period>_p0``
    so the parts do not collide. Only names present in that part's parameters are renamed.
    """
    parts: list[str] = []
    params: SqlParams = {}
    for period, sql, own in compiled:
        prefix = f"w{int(period)}_"

        def rename(m: re.Match[str], own: SqlParams = own, prefix: str = prefix) -> str:
            return "{" + prefix + m[1] + ":" if m[1] in own else m[0]

        parts.append(f"SELECT {int(period)} AS {PERIOD}, * FROM ({_PLACEHOLDER.sub(rename, sql)})")  # noqa: S608 -- compiled SQL and an int only
        params.update({prefix + k: v for k, v in own.items()})
    return " UNION ALL ".join(parts), params


def service_first_seen_sql(patterns_table: str, scope: str | None = None) -> str:
    """Each service's oldest pattern (``first_ns``) among the patterns table's rows of the services
    ``{lh_services}`` (an ``Array(String)`` parameter), within ``scope`` (a condition on its tenant
    and service columns, values as parameters) when given."""
    where = "service IN {lh_services:Array(String)}" + (f" AND ({scope})" if scope is not None else "")
    return (f"SELECT toString(service) AS service, toUnixTimestamp64Nano(min(first_seen)) AS first_ns "  # noqa: S608
            f"FROM {patterns_table} WHERE {where} GROUP BY service")
