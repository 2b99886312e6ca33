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

__all__ = ["SetsSql", "cheap_counts_sql", "conjunctions_sql", "sample_sql", "slice_sample", "totals_sql"]

#: the focus and baseline conditions and the WHERE that holds both, as compiled
SetsSql = tuple[str, str, str]


def _inner(table: str, sets: SetsSql, columns: Sequence[str], also: str = "") -> str:
    focus, baseline, where = sets
    cols = "".join(f"{c}, " for c in columns)
    if also:  # in the scan's own WHERE, so the engine reads other columns of matching granules only
        where = f"{where} AND ({also})"
    return f"SELECT {cols}({focus}) AS __f, ({baseline}) AS __b FROM {table} WHERE {where}"


def slice_sample(condition: str, width: str, k: str) -> str:
    """``condition`` kept on whole time slices of ``width`` ns, one slice in ``k`` by a hash of
    the slice (``width`` and ``k``: placeholders)."""
    return f"(({condition}) AND cityHash64(intDiv(toUnixTimestamp64Nano(`timestamp`), {width})) % {k} = 0)"


def totals_sql(table: str, sets: SetsSql, number_columns: Sequence[str]) -> str:
    """Records (``nf``, ``nb``) and time extents (``fa``/``fz``, ``ba``/``bz``, ns) of each set,
    and per number column ``i`` its counts (``n<i>f``/``n<i>b``) and p50/p95 (``q<i>f``/``q<i>b``)."""
    select = ["countIf(__f) AS nf", "countIf(__b) AS nb",
              "toUnixTimestamp64Nano(minIf(`timestamp`, __f)) AS fa",
              "toUnixTimestamp64Nano(maxIf(`timestamp`, __f)) AS fz",
              "toUnixTimestamp64Nano(minIf(`timestamp`, __b)) AS ba",
              "toUnixTimestamp64Nano(maxIf(`timestamp`, __b)) AS bz"]
    for i, column in enumerate(number_columns):
        ref = quote_identifier(column)
        select += [f"countIf(__f AND isNotNull({ref})) AS n{i}f",
                   f"countIf(__b AND isNotNull({ref})) AS n{i}b",
                   f"quantilesIf(0.5, 0.95)({ref}, __f) AS q{i}f",
                   f"quantilesIf(0.5, 0.95)({ref}, __b) AS q{i}b"]
    columns = ["`timestamp`", *(quote_identifier(c) for c in number_columns)]
    return f"SELECT {', '.join(select)} FROM ({_inner(table, sets, columns)})"


def cheap_counts_sql(table: str, sets: SetsSql, columns: Sequence[str], keep: str = "") -> str:
    """Every value of each column (as ``c<i>``) counted in both sets (``f``, ``b``), one
    ``GROUPING SETS`` pass; ``g`` is the row's GROUPING mask (a 0 bit: the column it is grouped by;
    all ones: the ``()`` set, the records counted). ``keep``: a sampling condition, or none."""
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
            f"FROM ({_inner(table, sets, exprs, keep)}) GROUP BY GROUPING SETS ({sets_sql})")


def sample_sql(table: str, sets: SetsSql, columns: Sequence[str], keep: str, per_set: int) -> str:
    """The records ``keep`` (a sampling condition) selects, at most ``per_set`` of each set."""
    return f"SELECT * FROM ({_inner(table, sets, columns, keep)}) LIMIT {int(per_set)} BY __f"


def conjunctions_sql(table: str, sets: SetsSql, conditions: Sequence[str]) -> str:
    """Counts (``f<i>``, ``b<i>``) of each set's records matching the first ``i + 1`` conditions."""
    exprs = [f"ifNull({c}, 0) AS k{i}" for i, c in enumerate(conditions)]
    select = []
    for i in range(len(conditions)):
        both = " AND ".join(f"k{j}" for j in range(i + 1))
        select += [f"countIf(__f AND {both}) AS f{i}", f"countIf(__b AND {both}) AS b{i}"]
    return f"SELECT {', '.join(select)} FROM ({_inner(table, sets, exprs)})"
