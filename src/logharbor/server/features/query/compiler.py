"""Query AST → one ClickHouse SELECT (:class:`CompiledQuery`).

A query is a chain of *stages*; each stage is one ``SELECT … FROM source WHERE … GROUP BY …
ORDER BY … LIMIT …``. Pipes fill the current stage while they can (a ``where`` before any
projection is just more WHERE, a ``sort`` after ``stats`` is the ORDER BY of the same GROUP BY)
and wrap it as a subquery when they cannot (a ``where`` after ``stats`` filters its rows).
Projections use internal aliases (``__c0``) renamed to the user's names one level up, so a
column called ``timestamp`` or ``n`` in the output can never shadow a table column in WHERE.

User values are parameters (see :mod:`.filters`); identifiers come from the table's column list
or ``sqlsafe``; the only other things in the SQL text are numbers the compiler computed itself
(limits, interval seconds, quantile levels), each validated as an ``int``/``float`` first.
"""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass
from typing import Any, Literal

from logharbor.server.engine.store.sqlsafe import quote_identifier
from logharbor.server.engine.store.timebounds import before_end

from . import ast
from .aggregates import aggregate_sql
from .errors import FilterOnlyError, QueryError, QueryTooLargeError, QueryTypeError, UnknownFieldError
from .fields import FieldRef, Kind, attribute_value, attributes_of, resolve_field, table_columns
from .filters import FilterCompiler, Params, Resolver
from .parser import parse
from .patterns import GROUP_OF_VALUE, compare_window, pattern_groups, patterns_pipe, resolved_source
from .stage import Column, Stage, StageBuilder
from .timeparse import TimeParseError, parse_duration_ns

__all__ = ["DEFAULT_LIMIT", "EXACT_SOURCE", "CompiledQuery", "compile_ast", "compile_filter", "compile_query",
           "exact_fields"]

DEFAULT_LIMIT = 100
#: the engine refuses SQL text over 256 KiB (max_query_size); refuse it first, as a 400
MAX_SQL_CHARS = 240_000
_INTERNAL = re.compile(r"\b__c\d+\b")
#: aggregates whose value over no records is 0, so an empty timechart bucket can be a 0 row
_ZERO_WHEN_EMPTY = frozenset({"count", "count_uniq", "sum", "rate"})
_NICE_SPANS_S = (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)


@dataclass(frozen=True)
class CompiledQuery:
    """SQL text, its parameters, the output column names and what kind of rows they are.

    ``records`` rows carry every table column (the caller turns them into wire records);
    ``table`` and ``timechart`` rows are plain JSON objects with ``columns`` as keys.
    """

    sql: str
    params: dict[str, object]
    columns: list[str]
    kind: Literal["records", "table", "timechart"]
    limit: int
    query: ast.Query
    #: ``(column, attribute name)`` of a ``fields`` projection of records whose values are taken
    #: from each row's whole attributes (the :data:`EXACT_SOURCE` column, then removed): exactly
    #: as stored, objects too (:func:`exact_fields`); name ``""`` is the whole attributes object
    exact: tuple[tuple[str, str], ...] = ()
    #: ``pattern_id`` is already the group's id (the query read the logs through the patterns
    #: table); otherwise records carry the stored id, resolved by the caller
    groups_resolved: bool = False


#: the hidden column a ``fields`` projection of attributes carries along (see CompiledQuery.exact):
#: the row's attributes text
EXACT_SOURCE = ("__lh_attributes",)


def exact_fields(compiled: CompiledQuery, row: dict[str, Any]) -> dict[str, Any]:
    """A ``table`` row with its projected attributes as stored (a float stays a float, an integer
    beyond 64 bits an integer, an object or a null the value it is) and the hidden columns gone."""
    if not compiled.exact:
        return row
    attributes = attributes_of(row.pop(EXACT_SOURCE[0], None))
    for column, name in compiled.exact:
        row[column] = attribute_value(attributes, name) if name else attributes
    return row


class _Compiler(StageBuilder):
    """The pipes of the language, each turned into stage edits (the state is :class:`StageBuilder`)."""

    # -------------------------------------------------------------------------- name resolution

    def resolver(self, stage: Stage) -> Resolver:
        if stage.derived is None:
            return resolve_field
        by_name = {c.name: c for c in stage.derived}

        def resolve(name: str, position: int | None = None) -> FieldRef:
            col = by_name.get(name)
            if col is None:
                known = ", ".join(c.name for c in stage.derived or [])
                raise UnknownFieldError(f"{name!r} is not a column here; the columns are: {known}", position)
            return FieldRef(name, quote_identifier(name), col.kind, col.nullable)

        return resolve

    def output_ref(self, name: str) -> str:
        """A name after a projection in the same stage (sort/dedup after stats or fields)."""
        col = self.output_column(name)
        # a projected attribute is its text form (NULL when absent): grouped as '' like on records
        return f"ifNull({col.internal}, '')" if col.kind == "dynamic" else col.internal

    def output_column(self, name: str) -> Column:
        """The projected column called ``name`` in the current stage."""
        assert self.stage.select is not None
        for _, col in self.stage.select:
            if col.name == name:
                return col
        known = ", ".join(col.name for _, col in self.stage.select)
        raise UnknownFieldError(f"{name!r} is not a column here; the columns are: {known}")

    def filters(self) -> FilterCompiler:
        compiler = FilterCompiler(self.params, self.resolver(self.stage), self.now_ns)
        if self.groups_resolved and self.stage.derived is None:
            compiler.pattern_value = GROUP_OF_VALUE
        if self.stage.derived is None:  # the logs' own records: the values table speaks for them
            compiler.free_text_table = self.free_text_table
        return compiler

    def wrap(self) -> None:
        """Make the current stage a subquery of a new one, keeping its row order visible."""
        old = self.stage
        derived = old.outputs() if old.select is not None or old.derived is not None else None
        order = list(old.order_by)
        if old.select is not None:  # internal aliases are not visible outside: use the output names
            if any("`" in _INTERNAL.sub("", key) for key in order):
                order = []  # ordered by a table column the projection did not keep
            names = {col.internal: quote_identifier(col.name) for _, col in old.select}
            order = [_INTERNAL.sub(lambda m: names.get(m[0], m[0]), key) for key in order]
        self.stage = Stage(source=f"({old.render()})", derived=derived, order_by=order)

    # ------------------------------------------------------------------------------------ pipes

    def pipe(self, p: ast.Pipe) -> None:
        try:
            self._pipe(p)
        except QueryError as exc:
            if exc.position is None and p.pos is not None:
                exc.position = p.pos
                exc.message = f"{exc.message} (in the pipe at {p.pos})"
            raise

    def _pipe(self, p: ast.Pipe) -> None:
        st = self.stage
        if isinstance(p, ast.Where):
            if st.select is not None or st.limit is not None or st.limit_by:
                self.wrap()
            self.stage.where.append(self.filters().compile(p.filter))
        elif isinstance(p, ast.Limit):
            st.limit = p.count if st.limit is None else min(st.limit, p.count)
        elif isinstance(p, ast.Sort):
            if st.limit is not None or st.limit_by:
                self.wrap()
            self.stage.order_by = [self.sort_key(k) for k in p.keys]
            self.stage.fill = ""
        elif isinstance(p, ast.Dedup):
            if st.limit is not None or st.limit_by:
                self.wrap()
            self.stage.limit_by = [self.group_expr(n) for n in p.names]
        elif isinstance(p, ast.Fields):
            self.fields(p)
        elif isinstance(p, ast.Top):
            by = ast.Agg("count", None, "count")
            self.aggregate((by,), (p.field,), None)
            count = self.output_ref("count")
            value = self.output_ref(p.field)
            self.stage.order_by = [f"{count} {'ASC' if p.rare else 'DESC'}", f"{value} ASC"]
            self.stage.limit = p.count
        elif isinstance(p, ast.Patterns):
            patterns_pipe(self, p)
        elif isinstance(p, ast.Stats):
            self.aggregate(p.aggs, p.by, None)
        else:
            self.aggregate(p.aggs, p.by, p.span)

    def sort_key(self, key: ast.SortKey) -> str:
        direction = "DESC" if key.descending else "ASC"
        if self.stage.select is not None:
            col = self.output_column(key.name)
            if col.kind != "dynamic":
                return f"{col.internal} {direction}"
            ref = FieldRef(col.name, col.internal, "dynamic", True)
        else:
            ref = self.resolver(self.stage)(key.name, None)
        if ref.kind == "dynamic":
            return f"{ref.number_sql} {direction}, {ref.group_sql} {direction}"
        return f"{ref.sql} {direction}"

    def group_expr(self, name: str) -> str:
        if self.stage.select is not None:
            return self.output_ref(name)
        return self.resolver(self.stage)(name, None).group_sql

    def fields(self, p: ast.Fields) -> None:
        if self.stage.select is not None:
            self.wrap()
        resolve = self.resolver(self.stage)
        stage_is_records = self.stage.derived is None
        select = []
        exact = []
        for name in p.names:
            ref = resolve(name, None)
            kind: Kind = "string" if ref.kind == "time" else ref.kind
            select.append((ref.select_sql, Column(name, self.new_alias(), kind, ref.nullable)))
            if ref.kind == "dynamic" and ref.paths:  # an attribute of the records themselves
                exact.append((name, name.removeprefix("attributes.")))
            elif ref.kind == "json" and stage_is_records:  # the whole attributes, as the object
                exact.append((name, ""))
        self._check_unique([c.name for _, c in select])
        self.exact = ()
        if exact:
            # a path's text form is the engine's (13.0 is 13, an object re-serialised): the
            # whole attributes text goes along so the answer is read from it, as stored
            hidden = Column(EXACT_SOURCE[0], self.new_alias(), "string", True)
            select.append((quote_identifier("attributes"), hidden))
            self.exact = tuple(exact)
        self.stage.select = select
        if self.kind == "records":
            self.kind = "table"

    def aggregate(self, aggs: tuple[ast.Agg, ...], by: tuple[str, ...], span: str | None) -> None:
        st = self.stage
        if st.select is not None or st.limit is not None or st.limit_by:
            self.wrap()
        st = self.stage
        st.order_by = []
        self.exact = ()  # a projection's hidden columns do not reach the aggregate's rows
        resolve = self.resolver(st)
        select: list[tuple[str, Column]] = []
        span_s = 0
        if span is not None:
            if st.derived is not None:
                raise QueryTypeError("timechart needs records; put it before stats, fields and top")
            span_s = self.span_seconds(span)
            # grouped and sorted as a DateTime, formatted once per bucket one level up
            bucket = f"toStartOfInterval(`timestamp`, toIntervalSecond({int(span_s)}))"
            select.append((bucket, Column("_time", self.new_alias(), "string", False, as_time_text=True)))
        for name in by:
            ref = resolve(name, None)
            if ref.kind == "json":
                raise QueryTypeError("group by a path inside attributes, not the whole object")
            kind: Kind = "string" if ref.kind in ("dynamic", "text", "time") else ref.kind
            as_text = ref.kind == "time"
            select.append((ref.group_sql, Column(name, self.new_alias(), kind, ref.nullable, as_text)))
        groups = [col.internal for _, col in select]
        for agg in aggs:
            try:
                expr, kind = aggregate_sql(agg, resolve, self.params, records=st.derived is None,
                                           window_s=span_s or self.window_seconds())
            except QueryError as exc:
                if exc.position is None and agg.pos is not None:
                    exc.position = agg.pos
                    exc.message = f"{exc.message} (at {agg.pos})"
                raise
            select.append((expr, Column(agg.name, self.new_alias(), kind, True)))
        self._check_unique([c.name for _, c in select])
        st.select = select
        st.group_by = groups
        st.order_by = [f"{g} ASC" for g in groups]
        if span is not None and not by and all(a.fn in _ZERO_WHEN_EMPTY for a in aggs):
            st.fill = self.zero_fill(span_s)
        self.kind = "timechart" if span is not None else "table"
        self.aggregated = True

    def zero_fill(self, span_s: int) -> str:
        """Empty buckets of a counting timechart over a known window come out as zeros.

        Only without ``by`` (a missing bucket has no group value to fill in) and only for
        functions whose value over no records is 0 (an average of nothing is not 0).
        """
        if self.time_from_ns is None:
            return ""
        end = self.time_to_ns if self.time_to_ns is not None else self.now_ns
        start = self.params.add(self.time_from_ns, "Int64")
        stop = self.params.add(end, "Int64")
        step = f"toIntervalSecond({int(span_s)})"
        # the bucket column is a DateTime('UTC'), so both ends are too
        first = f"toStartOfInterval(toDateTime(fromUnixTimestamp64Nano({start}, 'UTC'), 'UTC'), {step})"
        last = f"toDateTime(fromUnixTimestamp64Nano({stop}, 'UTC'), 'UTC')"
        return f"WITH FILL FROM {first} TO {last} STEP {step}"

    def span_seconds(self, span: str) -> int:
        if span:
            try:
                ns = parse_duration_ns(span)
            except TimeParseError as exc:
                raise QueryTypeError(f"timechart span: {exc}") from None
            return max(1, ns // 1_000_000_000)
        window = self.window_seconds()
        if window is None:
            return 3600
        target = window / 100
        return next((s for s in _NICE_SPANS_S if s >= target), _NICE_SPANS_S[-1])

    def window_seconds(self) -> int | None:
        if self.time_from_ns is None:
            return None
        end = self.time_to_ns if self.time_to_ns is not None else self.now_ns
        return max(1, (end - self.time_from_ns) // 1_000_000_000)

    @staticmethod
    def _check_unique(names: list[str]) -> None:
        seen = set()
        for name in names:
            if name in seen:
                raise UnknownFieldError(f"two output columns are called {name!r}; rename one with 'as'")
            seen.add(name)

    # ------------------------------------------------------------------------------------ final

    def finish(self, cap: int) -> tuple[str, list[str]]:
        st = self.stage
        st.limit = cap if st.limit is None else min(st.limit, cap)
        if self.kind == "records":
            columns = [name for name, _, _ in table_columns()]
        else:
            columns = [c.name for c in st.outputs() if c.name not in EXACT_SOURCE]
            if not set(EXACT_SOURCE) <= {c.name for c in st.outputs()}:
                self.exact = ()
        return st.render(), columns


def _names_patterns(query: ast.Query) -> bool:
    """Whether the query reads ``pattern_id`` (a filter, a pipe's field) or has ``| patterns``."""
    return "pattern_id" in repr(query) or any(isinstance(p, ast.Patterns) for p in query.pipes)


def compile_ast(
    query: ast.Query,
    *,
    table: str,
    time_from_ns: int | None = None,
    time_to_ns: int | None = None,
    limit: int | None = None,
    max_limit: int = 10_000,
    scope_sql: tuple[str, dict[str, object]] | None = None,
    default_limit: int = DEFAULT_LIMIT,
    now_ns: int | None = None,
    patterns_table: str | None = None,
    free_text_table: str | None = None,
) -> CompiledQuery:
    """Compile a parsed query; see :func:`compile_query`."""
    now = time.time_ns() if now_ns is None else now_ns
    resolved = patterns_table is not None and _names_patterns(query)
    if resolved:
        # rows hold the id of their masked template; the query sees the id of its group (the
        # patterns table says which: query/patterns.py)
        table = resolved_source(table)
    c = _Compiler(table, now, time_from_ns, time_to_ns)
    c.groups_resolved = resolved
    c.free_text_table = free_text_table
    if patterns_table is not None:
        c.patterns_table = patterns_table
    compare = next((p for p in query.pipes if isinstance(p, ast.Patterns) and p.compare is not None), None)
    if compare is not None:
        # two periods of one length: the time condition covers both, the pipe tells them apart
        c.compare = compare_window(compare, time_from_ns, time_to_ns, now)
        time_from_ns, time_to_ns = c.compare[0], c.compare[2]
    st = c.stage
    if time_from_ns is not None:
        start = c.params.add(time_from_ns, "Int64")
        st.where.append(f"`timestamp` >= fromUnixTimestamp64Nano({start}, 'UTC')")
    if time_to_ns is not None:
        end = c.params.add(time_to_ns, "Int64")
        st.where.append(before_end("`timestamp`", end, time_to_ns))
    if scope_sql is not None:
        fragment, scope_params = scope_sql
        clash = [k for k in scope_params if k[:1] == "p" and k[1:].isdigit()]
        if clash:
            raise ValueError(f"scope parameters must not be named p<N>: {sorted(clash)}")
        st.where.append(f"({fragment})")
    if not isinstance(query.filter, ast.MatchAll):
        st.where.append(c.filters().compile(query.filter))
    for pipe in query.pipes:
        c.pipe(pipe)
    if limit is not None and limit < 0:
        raise QueryError("limit must be zero or more")
    default = max_limit if c.aggregated else default_limit
    cap = min(limit if limit is not None else default, max_limit)
    sql, columns = c.finish(cap)
    if resolved:
        sql = f"{pattern_groups(c.patterns_table)} {sql}"
    if len(sql) > MAX_SQL_CHARS:
        raise QueryTooLargeError(f"the query is too large to run ({len(sql)} characters of SQL); "
                         "split it or use fewer terms")
    params = dict(c.params.values)
    if scope_sql is not None:
        params.update(scope_sql[1])
    return CompiledQuery(sql, params, columns, c.kind, cap, query, c.exact, resolved)


def compile_query(
    text: str,
    *,
    table: str,
    time_from_ns: int | None,
    time_to_ns: int | None,
    limit: int | None,
    max_limit: int,
    scope_sql: tuple[str, dict[str, object]] | None = None,
    default_limit: int = DEFAULT_LIMIT,
    now_ns: int | None = None,
    patterns_table: str | None = None,
    free_text_table: str | None = None,
) -> CompiledQuery:
    """Parse and compile query text for ``table`` (an already quoted identifier).

    ``time_from_ns``/``time_to_ns`` bound ``timestamp`` (from inclusive, to exclusive);
    ``limit`` caps the rows (default 100 for records, ``max_limit`` for tables) and never goes
    over ``max_limit``; ``scope_sql`` is an extra condition AND-ed into the first WHERE (tenant
    and service scopes of an API key), with its own parameters; ``patterns_table`` (quoted) is
    what ``| patterns`` joins (default ``patterns``); ``free_text_table`` (quoted) is the store's
    table of the values a bare word's fields have held (store/freetext.py; None: every field term
    is read, as on a store without one).
    """
    return compile_ast(parse(text), table=table, time_from_ns=time_from_ns, time_to_ns=time_to_ns,
                       limit=limit, max_limit=max_limit, scope_sql=scope_sql,
                       default_limit=default_limit, now_ns=now_ns, patterns_table=patterns_table,
                       free_text_table=free_text_table)


def compile_filter(text: str, *, now_ns: int | None = None) -> tuple[str, dict[str, object]]:
    """A filter-only query (``| where`` pipes allowed) as one SQL condition and its parameters.

    For callers that run the condition over rows of the logs table's shape themselves (live tail
    over a batch, alert pre-filters). Any other pipe is a :class:`QueryError` with code
    ``filter_only``.
    """
    query = parse(text)
    extra = [p for p in query.pipes if not isinstance(p, ast.Where)]
    if extra:
        raise FilterOnlyError("only a filter (and '| where …') is allowed here; stats, fields, sort, "
                              "limit and the other pipes work in a search")
    params = Params()
    # the condition may run over rows without the promoted columns (cold files): read the text
    resolve = functools.partial(resolve_field, promoted=False)
    compiler = FilterCompiler(params, resolve, time.time_ns() if now_ns is None else now_ns)
    parts = [compiler.compile(f) for f in (query.filter, *(p.filter for p in query.pipes))
             if not isinstance(f, ast.MatchAll)]
    return (" AND ".join(parts) if parts else "1"), dict(params.values)
