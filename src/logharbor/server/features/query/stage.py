"""The stages a query compiles to, and the builder's state every pipe edits.

A query is a chain of :class:`Stage` (one ``SELECT … FROM source WHERE … GROUP BY … ORDER BY …
LIMIT …`` each, see :mod:`.compiler`). :class:`StageBuilder` is what a pipe is given: the current
stage, the parameters, fresh internal aliases and what the query has become (records, a table, a
timechart). The compiler's pipes and the ``| patterns`` pipe (:mod:`.patterns`) both build on it,
so neither reaches into the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from logharbor.server.engine.store.sqlsafe import SqlNameError, quote_identifier

from .errors import UnknownFieldError
from .fields import Kind, format_time_sql, table_columns
from .filters import Params

__all__ = ["Column", "Stage", "StageBuilder"]


@dataclass
class Column:
    """A column a stage projects: the user's name outside, an internal alias inside."""

    name: str  # the user's name (output alias one level up)
    internal: str  # the alias inside the stage
    kind: Kind
    nullable: bool = True
    as_time_text: bool = False  # a DateTime inside the stage, RFC 3339 text outside it

    def outer_sql(self) -> str:
        return format_time_sql(self.internal) if self.as_time_text else self.internal


def _alias(name: str) -> str:
    """An output column's name, quoted; a key no identifier can spell (a NUL in it, longer than
    256 characters) is still found by a filter, but cannot name a column of the answer."""
    try:
        return quote_identifier(name)
    except SqlNameError as exc:
        raise UnknownFieldError(f"{name[:80]!r} cannot name a column of the answer ({exc}); filter on "
                                "it, or show the whole record") from None


@dataclass
class Stage:
    """One SELECT: its source (the table or the previous stage), conditions, projection, order."""

    source: str
    derived: list[Column] | None  # None: the source has the table's columns
    where: list[str] = field(default_factory=list)
    select: list[tuple[str, Column]] | None = None
    group_by: list[str] = field(default_factory=list)
    order_by: list[str] = field(default_factory=list)
    limit_by: list[str] = field(default_factory=list)
    fill: str = ""  # "WITH FILL …" after the first ORDER BY key (timechart zero buckets)
    limit: int | None = None

    def render(self) -> str:
        if self.select is None:
            cols = ", ".join(c.name if self.derived is None else quote_identifier(c.name)
                             for c in self._source_columns())
        else:
            cols = ", ".join(f"{expr} AS {col.internal}" for expr, col in self.select)
        # names come from the schema or quote_identifier, values are {pN:Type} placeholders
        sql = f"SELECT {cols} FROM {self.source}"  # noqa: S608
        if self.where:
            sql += " WHERE " + " AND ".join(self.where)
        if self.group_by:
            sql += " GROUP BY " + ", ".join(self.group_by)
        if self.order_by:
            first, *rest = self.order_by
            sql += " ORDER BY " + ", ".join([f"{first} {self.fill}".rstrip(), *rest])
        if self.limit_by:
            sql += " LIMIT 1 BY " + ", ".join(self.limit_by)
        if self.limit is not None:
            sql += f" LIMIT {int(self.limit)}"
        if self.select is None:
            return sql
        outer = ", ".join(f"{col.outer_sql()} AS {_alias(col.name)}" for _, col in self.select)
        return f"SELECT {outer} FROM ({sql})"  # noqa: S608 -- internal and quoted aliases only

    def _source_columns(self) -> list[Column]:
        if self.derived is not None:
            return self.derived
        return [Column(quote_identifier(n), n, k, nl) for n, k, nl in table_columns()]

    def outputs(self) -> list[Column]:
        if self.select is not None:
            return [col for _, col in self.select]
        return self.derived if self.derived is not None else []


class StageBuilder:
    """The compiler's state: the current stage, the parameters, aliases and the result kind."""

    def __init__(self, table: str, now_ns: int, time_from_ns: int | None, time_to_ns: int | None) -> None:
        self.params = Params()
        self.now_ns = now_ns
        self.time_from_ns = time_from_ns
        self.time_to_ns = time_to_ns
        self.stage = Stage(source=table, derived=None, order_by=["`timestamp` DESC"])
        self.kind: Literal["records", "table", "timechart"] = "records"
        self.aggregated = False  # after stats/timechart/top the default row cap is max_limit
        self.alias_counter = 0
        #: set by a ``fields`` projection of records: (column, attribute name) to take exactly
        self.exact: tuple[tuple[str, str], ...] = ()
        self.patterns_table = quote_identifier("patterns")
        self.groups_resolved = False  # the source's pattern_id is the group's (query/patterns.py)
        #: the store's free-text values table, quoted (store/freetext.py), or None
        self.free_text_table: str | None = None
        #: (previous start, current start, current end) of a ``| patterns compare`` (patterns.py)
        self.compare: tuple[int, int, int] | None = None

    def new_alias(self) -> str:
        self.alias_counter += 1
        return f"__c{self.alias_counter}"
