"""``| patterns`` and ``| patterns compare <duration>``: templates of the matching records.

A row stores the id of its masked template; the patterns table (server/engine/store/patterns.py) says
which group each stored id belongs to now (``group_id``, docs/patterns.md). A query that names
``pattern_id`` (or has this pipe) reads the logs through :func:`resolved_source`, where
``pattern_id`` is already the group's id, so filters, ``stats … by pattern_id`` and this pipe all
see groups.

Both forms count the matching records per (tenant, service, pattern_id) in the current stage (so
the filter, the time range and the key's scope apply exactly as to any query), then join the
patterns table, grouped by group, for what a window cannot know: the current template and when
the group — any of its masked templates, or an id an earlier release stored — was first and last
seen over all time.

``compare`` widens the time condition to two periods of the same length: the current one (the
query's ``from``/``to``, or the last ``<duration>`` when it has none) and the one right before
it, counts each, and classes every template: ``new`` (first seen, over all time, inside the current
period), ``gone`` (none now, some before), ``changed`` (the count at least doubled or at least
halved, or it is back after the previous period had none) and ``steady``. ``change`` is
``(count - previous_count) / max(previous_count, 1)``; rows come most changed first.
"""

from __future__ import annotations

from . import ast
from .errors import QueryTypeError
from .stage import Column, StageBuilder
from .timeparse import TimeParseError, parse_duration_ns

__all__ = ["COMPARE_COLUMNS", "GROUP_OF_VALUE", "PATTERNS_COLUMNS", "compare_window", "pattern_groups",
           "patterns_pipe", "resolved_source"]

PATTERNS_COLUMNS = ("pattern_id", "service", "template", "count", "first_seen", "last_seen", "sample")
COMPARE_COLUMNS = ("pattern_id", "service", "template", "count", "previous_count", "change", "status")


def _assignments(patterns_table: str) -> str:
    """Each stored id's latest assignment: tenant, service, pattern_id, g (its group id, NULL for a
    row no miner assigned), tpl, upd, f, l (first and last seen)."""
    # the table name is quoted by the caller (sqlsafe)
    return ("SELECT tenant, service, pattern_id, argMax(group_id, updated) AS g, "  # noqa: S608
            "argMax(template, updated) AS tpl, max(updated) AS upd, min(first_seen) AS f, "
            f"max(last_seen) AS l FROM {patterns_table} GROUP BY tenant, service, pattern_id")


def pattern_groups(patterns_table: str) -> str:
    """The ``WITH`` clause a resolved query starts with: ``lh_pattern_groups``, (stored ids, their
    group ids) of every id assigned to a group other than itself — one scalar subquery, which the
    engine computes once per query."""
    mapping = (f"SELECT (groupArray(pattern_id), groupArray(assumeNotNull(g))) FROM "  # noqa: S608
               f"({_assignments(patterns_table)}) WHERE g IS NOT NULL AND g != pattern_id")
    return f"WITH ({mapping}) AS lh_pattern_groups"


def resolved_source(table: str) -> str:
    """``table`` with ``pattern_id`` replaced by the stored id's group id (itself when the patterns
    table assigns it none); the query must start with :func:`pattern_groups`."""
    return (f"(SELECT * REPLACE (transform(`pattern_id`, lh_pattern_groups.1, lh_pattern_groups.2, "  # noqa: S608
            f"`pattern_id`) AS `pattern_id`) FROM {table})")


#: a ``pattern_id`` value as its group's (a stored id, an alias or a group id all find the group)
GROUP_OF_VALUE = "transform({v}, lh_pattern_groups.1, lh_pattern_groups.2, {v})"


def compare_window(p: ast.Patterns, time_from_ns: int | None, time_to_ns: int | None,
                   now_ns: int) -> tuple[int, int, int]:
    """(previous start, current start, current end) in ns for ``| patterns compare <d>``."""
    assert p.compare is not None
    try:
        length = parse_duration_ns(p.compare)
    except TimeParseError as exc:
        raise QueryTypeError(f"patterns compare: {exc}", p.pos) from None
    if length <= 0:
        raise QueryTypeError("patterns compare: the duration must be more than zero", p.pos)
    end = time_to_ns if time_to_ns is not None else now_ns
    start = time_from_ns if time_from_ns is not None else end - length
    if start >= end:
        raise QueryTypeError("patterns compare: the time range is empty", p.pos)
    return start - (end - start), start, end


def patterns_pipe(c: StageBuilder, p: ast.Patterns) -> None:
    """Turn the current (records) stage into the patterns table of its rows."""
    st = c.stage
    if st.derived is not None or st.select is not None or st.limit is not None or st.limit_by:
        raise QueryTypeError("patterns needs records: put it right after the filter (and where)")
    st.where.append("`pattern_id` != ''")
    ts = "`timestamp`"
    counts: list[tuple[str, str]] = [
        ("`tenant`", "t"), ("`service`", "s"), ("`pattern_id`", "id"),
        ("min(`timestamp`)", "first"), ("max(`timestamp`)", "last"), ("any(`message`)", "msg")]
    if p.compare is None:
        counts.append(("count()", "n"))
    else:
        assert c.compare is not None
        _, current, _ = c.compare
        cur = c.params.add(current, "Int64")
        counts.append((f"countIf({ts} >= fromUnixTimestamp64Nano({cur}, 'UTC'))", "n"))
        counts.append((f"countIf({ts} < fromUnixTimestamp64Nano({cur}, 'UTC'))", "prev"))
    inner = ", ".join(f"{expr} AS {alias}" for expr, alias in counts)
    # names come from the schema or quote_identifier; values are {pN:Type} placeholders
    sql = f"SELECT {inner} FROM {st.source}"  # noqa: S608
    if st.where:
        sql += " WHERE " + " AND ".join(st.where)
    sql += " GROUP BY `tenant`, `service`, `pattern_id`"
    known = (  # per group: its current template, first and last seen over all its stored ids
        "SELECT tenant, service, ifNull(g, pattern_id) AS gid, argMax(tpl, upd) AS template, "  # noqa: S608
        f"min(f) AS first_seen, max(l) AS last_seen FROM ({_assignments(c.patterns_table)}) "
        "GROUP BY tenant, service, gid")
    source = (f"({sql}) AS c LEFT JOIN ({known}) AS k "
              "ON c.t = k.tenant AND c.s = k.service AND c.id = k.gid")
    first = "if(k.gid = '', c.first, least(k.first_seen, c.first))"
    template = "ifNull(k.template, '')"  # '' only while the template row is on its way
    select: list[tuple[str, Column]] = [
        ("c.id", Column("pattern_id", c.new_alias(), "string", False)),
        ("c.s", Column("service", c.new_alias(), "string", False)),
        (template, Column("template", c.new_alias(), "string", False)),
        ("c.n", Column("count", c.new_alias(), "int", False))]
    if p.compare is None:
        select += [
            (first, Column("first_seen", c.new_alias(), "string", False, as_time_text=True)),
            ("greatest(k.last_seen, c.last)",
             Column("last_seen", c.new_alias(), "string", False, as_time_text=True)),
            ("c.msg", Column("sample", c.new_alias(), "string", False))]
        order = [f"{select[3][1].internal} DESC", f"{select[0][1].internal} ASC"]
    else:
        _, current, _ = c.compare  # type: ignore[misc]
        cur = c.params.add(current, "Int64")
        change = "(toFloat64(c.n) - toFloat64(c.prev)) / greatest(toFloat64(c.prev), 1.0)"
        status = (f"multiIf({first} >= fromUnixTimestamp64Nano({cur}, 'UTC'), 'new', "
                  "c.n = 0, 'gone', c.prev = 0 OR c.n >= 2 * c.prev OR 2 * c.n <= c.prev, 'changed', "
                  "'steady')")
        select += [
            ("c.prev", Column("previous_count", c.new_alias(), "int", False)),
            (change, Column("change", c.new_alias(), "float", False)),
            (status, Column("status", c.new_alias(), "string", False))]
        order = [f"abs({select[5][1].internal}) DESC", f"{select[3][1].internal} DESC",
                 f"{select[0][1].internal} ASC"]
    c.stage = type(st)(source=source, derived=None, select=select, order_by=order)
    c.kind = "table"
    c.aggregated = True

