"""The two sets of records ``explain`` compares, as SQL conditions: the focus (the query's records
in the focus window) and the baseline (the same query in the window before, in a chosen window,
or everything else in the focus window).

The query's filter (and its leading ``where`` pipes) is compiled by the query language's own
filter compiler, so every value is a parameter and every name is resolved as a search resolves it;
the key's scope is AND-ed in as the query route does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from logharbor.server.engine.store.timebounds import before_end
from logharbor.server.features.query import ast
from logharbor.server.features.query.errors import FilterOnlyError
from logharbor.server.features.query.fields import resolve_field
from logharbor.server.features.query.fieldstats import filter_part
from logharbor.server.features.query.filters import FilterCompiler, Params
from logharbor.server.features.query.parser import parse

__all__ = ["MODES", "Mode", "Sets", "build_sets"]

Mode = Literal["previous", "window", "complement"]
MODES: tuple[Mode, ...] = ("previous", "window", "complement")


@dataclass(frozen=True)
class Sets:
    """SQL conditions (over the logs table) for the focus and the baseline, and their params.

    ``where`` is what either set needs (time, scope), so the engine reads only their granules;
    ``focus`` and ``baseline`` tell the two apart inside it. ``scanned`` is ``where`` without the
    query, and ``focus_scanned``/``baseline_scanned`` its windows: the records a pass reads to
    find the sets' (what a pass costs).
    """

    query: ast.Query
    mode: Mode
    focus_window: tuple[int, int]
    baseline_window: tuple[int, int]
    where: str
    focus: str
    baseline: str
    compiler: FilterCompiler
    scope_params: dict[str, Any]
    scanned: str
    focus_scanned: str
    baseline_scanned: str

    @property
    def params(self) -> dict[str, Any]:
        """Every placeholder's value so far (conditions made later add theirs)."""
        return {**self.compiler.params.values, **self.scope_params}

    def condition(self, f: ast.Filter) -> str:
        """More SQL over the same params (a conjunction of found values, say)."""
        return self.compiler.compile(f)


def _time(params: Params, window: tuple[int, int]) -> str:
    lo = params.add(window[0], "Int64")
    hi = params.add(window[1], "Int64")
    return (f"(`timestamp` >= fromUnixTimestamp64Nano({lo}, 'UTC') AND "
            f"{before_end('`timestamp`', hi, window[1])})")


def build_sets(text: str, *, focus: tuple[int, int], mode: Mode, baseline: tuple[int, int] | None,
               scope: tuple[str, dict[str, Any]] | None, now_ns: int) -> Sets:
    """The two sets of ``text`` (a filter, optionally with ``where`` pipes). Raises
    :class:`~logharbor.server.features.query.errors.QueryError` for a bad query, ``ValueError`` for a mode
    that cannot make a baseline."""
    query = parse(text)
    records = filter_part(query)
    if len(records.pipes) != len(query.pipes):
        raise FilterOnlyError("explain compares records: give a filter (and where pipes), without "
                              "stats, fields, sort or other pipes")
    params = Params()
    compiler = FilterCompiler(params, resolve_field, now_ns)
    filters = [records.filter, *(p.filter for p in records.pipes if isinstance(p, ast.Where))]
    parts = [compiler.compile(f) for f in filters if not isinstance(f, ast.MatchAll)]
    matches = "(" + " AND ".join(f"ifNull({p}, 0)" for p in parts) + ")" if parts else "1"
    focus_time = _time(params, focus)
    if mode == "previous":
        length = focus[1] - focus[0]
        base_window = (focus[0] - length, focus[0])
    elif mode == "window":
        if baseline is None:
            raise ValueError("a 'window' baseline needs baseline_from and baseline_to")
        base_window = baseline
    else:
        if not parts:
            raise ValueError("the complement of every record is empty: give a query to compare "
                             "against the rest of its window")
        base_window = focus
    if mode == "complement":
        focus_sql = matches
        base_sql = f"(NOT {matches})"
        where = scanned = base_time = focus_time
    else:
        base_time = _time(params, base_window)
        focus_sql = f"({focus_time} AND {matches})"
        base_sql = f"({base_time} AND {matches})"
        scanned = f"({focus_time} OR {base_time})"
        where = f"{scanned} AND {matches}"
    scope_params: dict[str, Any] = {}
    if scope is not None:
        where = f"{where} AND ({scope[0]})"
        scanned = f"{scanned} AND ({scope[0]})"
        scope_params = dict(scope[1])
    return Sets(query=query, mode=mode, focus_window=focus, baseline_window=base_window, where=where,
                focus=focus_sql, baseline=base_sql, compiler=compiler, scope_params=scope_params,
                scanned=scanned, focus_scanned=focus_time, baseline_scanned=base_time)
