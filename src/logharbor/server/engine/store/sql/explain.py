"""``explain``'s SQL (``features/explain/passes.py``): each pass over the two sets is one SELECT
over an inner query that flags every record as in the focus set (``__f``) or the baseline
(``__b``).

The set conditions and ``where`` are the query compiler's output (placeholders only); column
references arrive quoted (``sqlsafe``); numbers are integers computed by the caller.
"""

# ruff: noqa: S608 -- identifiers from the schema via sqlsafe, values as {name:Type} placeholders
from __future__ import annotations

from collections.abc import Sequence

from logharbor.server.engine.store.sqlsafe import quote_identifier

__all__ = ["SetsSql", "cheap_counts_sql", "quantiles_conjunctions_sql", "sample_sql", "time_ranges",
           "totals_sql"]

#: the focus and baseline conditions and the WHERE that holds both, as compiled
SetsSql = tuple[str, str, str]


def _inner(table: str, sets: SetsSql, columns: Sequence[str]) -> str:
    focus, baseline, where = sets
    cols = "".join(f"{c}, " for c in columns)
    return f"SELECT {cols}({focus}) AS __f, ({baseline}) AS __b FROM {table} WHERE {where}"


def time_ranges(side: str, count: int) -> str:
    """``timestamp`` in any of ``count`` ``[from, to)`` ranges (ns placeholders ``<side>_a<i>``,
    ``<side>_z<i>``): conditions on the primary key, so the engine reads only their granules."""
    ranges = [f"(`timestamp` >= fromUnixTimestamp64Nano({{{side}_a{i}:Int64}}, 'UTC') AND "
              f"`timestamp` < fromUnixTimestamp64Nano({{{side}_z{i}:Int64}}, 'UTC'))" for i in range(count)]
    return "(" + " OR ".join(ranges) + ")"


def totals_sql(table: str, sets: SetsSql, scanned: tuple[str, str]) -> str:
    """Records (``nf``, ``nb``) and time extents (``fa``/``fz``, ``ba``/``bz``, ns) of each set,
    and the records read to find them in each set's window (``sf``, ``sb``: ``scanned``, the two
    windows' conditions; ``where`` holds both, without the query)."""
    select = ["countIf(__f) AS nf", "countIf(__b) AS nb",
              "toUnixTimestamp64Nano(minIf(`timestamp`, __f)) AS fa",
              "toUnixTimestamp64Nano(maxIf(`timestamp`, __f)) AS fz",
              "toUnixTimestamp64Nano(minIf(`timestamp`, __b)) AS ba",
              "toUnixTimestamp64Nano(maxIf(`timestamp`, __b)) AS bz",
              "countIf(__sf) AS sf", "countIf(__sb) AS sb"]
    columns = ["`timestamp`", f"({scanned[0]}) AS __sf", f"({scanned[1]}) AS __sb"]
    return f"SELECT {', '.join(select)} FROM ({_inner(table, sets, columns)})"


def quantiles_conjunctions_sql(table: str, sets: SetsSql, number_columns: Sequence[str],
                               conditions: Sequence[str], by_value: Sequence[str] = ()) -> str:
    """Per number column ``i``: its counts (``n<i>f``/``n<i>b``) and p50/p95 (``q<i>f``/``q<i>b``),
    and the same of the records matching each of ``by_value`` ``j`` (suffix ``_<j>``); counts
    (``f<i>``, ``b<i>``) of each set's records matching the first ``i + 1`` conditions."""
    select = []
    for i, column in enumerate(number_columns):
        ref = quote_identifier(column)
        for suffix, having in (("", ""), *((f"_{j}", f" AND v{j}") for j in range(len(by_value)))):
            select += [f"countIf(__f{having} AND isNotNull({ref})) AS n{i}f{suffix}",
                       f"countIf(__b{having} AND isNotNull({ref})) AS n{i}b{suffix}",
                       f"quantilesIf(0.5, 0.95)({ref}, __f{having}) AS q{i}f{suffix}",
                       f"quantilesIf(0.5, 0.95)({ref}, __b{having}) AS q{i}b{suffix}"]
    for i in range(len(conditions)):
        both = " AND ".join(f"k{j}" for j in range(i + 1))
        select += [f"countIf(__f AND {both}) AS f{i}", f"countIf(__b AND {both}) AS b{i}"]
    columns = [*(quote_identifier(c) for c in number_columns),
               *(f"ifNull({c}, 0) AS k{i}" for i, c in enumerate(conditions)),
               *(f"ifNull({c}, 0) AS v{j}" for j, c in enumerate(by_value))]
    return f"SELECT {', '.join(select)} FROM ({_inner(table, sets, columns)})"


def cheap_counts_sql(table: str, sets: SetsSql, columns: Sequence[str]) -> str:
    """Every value of each column (as ``c<i>``) counted in both sets (``f``, ``b``), one
    ``GROUPING SETS`` pass; ``g`` is the row's GROUPING mask (a 0 bit: the column it is grouped by;
    all ones: the ``()`` set, the records counted)."""
    names = [f"c{i}" for i in range(len(columns))]
    exprs = []
    for column, name in zip(columns, names, strict=True):
        ref = quote_identifier(column)
        # LowCardinality columns grouped as they are (their dictionary keys); the status as text
        value = f"ifNull(toString({ref}), '')" if column == "http_status" else ref
        exprs.append(f"{value} AS {name}")
    sets_sql = ", ".join(f"({n})" for n in names) + ", ()"
    listed = ", ".join(names)
    return (f"SELECT {listed}, countIf(__f) AS f, countIf(__b) AS b, grouping({listed}) AS g "
            f"FROM ({_inner(table, sets, exprs)}) GROUP BY GROUPING SETS ({sets_sql})")


def sample_sql(table: str, sets: SetsSql, columns: Sequence[str], per_set: int) -> str:
    """The sets' records, at most ``per_set`` of each set."""
    return f"SELECT * FROM ({_inner(table, sets, columns)}) LIMIT {int(per_set)} BY __f"
