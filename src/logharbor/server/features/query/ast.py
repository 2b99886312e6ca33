"""The typed syntax tree of a logharbor query (DESIGN §3 "Query language").

The parser produces these nodes, the printer turns them back into text and the compiler turns
them into SQL. They are frozen dataclasses so two parses of the same text compare equal, which is
what the round-trip property tests rely on; ``pos`` (where a node was written, for error
messages) takes no part in equality. Values are kept exactly as the user wrote them (after
unescaping); meaning (numbers, times, levels) is given to them by the compiler, which knows the
type of each field.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as _field
from typing import Literal

# --------------------------------------------------------------------------- value matchers


@dataclass(frozen=True)
class Word:
    """An unquoted value: a word on ``message``, or an exact value of a field."""

    value: str


@dataclass(frozen=True)
class Phrase:
    """A quoted value: a phrase on ``message``, or an exact value of a field."""

    value: str


@dataclass(frozen=True)
class Wildcard:
    """A value with ``*``/``?`` wildcards; ``pattern`` keeps them, with ``\\`` escaping literals."""

    pattern: str


@dataclass(frozen=True)
class Regex:
    """A ``/regex/`` (RE2 syntax, as ClickHouse's ``match`` reads it)."""

    pattern: str


@dataclass(frozen=True)
class Range:
    """``[lo TO hi]`` (inclusive) or ``{lo TO hi}`` (exclusive); ``None`` is an open end ``*``."""

    lo: str | None
    hi: str | None
    lo_inclusive: bool = True
    hi_inclusive: bool = True


CompareOp = Literal[">", ">=", "<", "<="]


@dataclass(frozen=True)
class Compare:
    """``field:>=500`` and friends."""

    op: CompareOp
    value: str


Matcher = Word | Phrase | Wildcard | Regex | Range | Compare

# --------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class Match:
    """One field matched by one matcher; ``field`` is ``None`` for the default field (message)."""

    field: str | None
    matcher: Matcher
    pos: int | None = _field(default=None, compare=False, repr=False)  # where it was written


@dataclass(frozen=True)
class Exists:
    """``_exists_:field`` or ``field:*``: the field is present (non-empty)."""

    field: str
    pos: int | None = _field(default=None, compare=False, repr=False)  # where it was written


@dataclass(frozen=True)
class MatchAll:
    """``*`` alone, or an empty filter: every record."""


@dataclass(frozen=True)
class Not:
    """``NOT x`` or ``-x``."""

    operand: Filter


@dataclass(frozen=True)
class And:
    """``a AND b`` or implicit ``a b``; always two or more items."""

    items: tuple[Filter, ...]


@dataclass(frozen=True)
class Or:
    """``a OR b``; always two or more items."""

    items: tuple[Filter, ...]


Filter = Match | Exists | MatchAll | Not | And | Or

# --------------------------------------------------------------------------- pipes


@dataclass(frozen=True)
class Agg:
    """One aggregate in ``stats``/``timechart``: ``fn(arg) as alias``."""

    fn: str
    arg: str | None = None
    alias: str | None = None
    pos: int | None = _field(default=None, compare=False, repr=False)  # where it was written

    @property
    def name(self) -> str:
        """The output column name: the alias, else the call as written (``p99(duration_ms)``)."""
        return self.alias or f"{self.fn}({self.arg or ''})"


@dataclass(frozen=True)
class Where:
    """``| where <filter>``: filter records, or the rows of an earlier ``stats``."""

    filter: Filter
    pos: int | None = _field(default=None, compare=False, repr=False)  # where it was written


@dataclass(frozen=True)
class Fields:
    """``| fields a, b``: keep only these columns."""

    names: tuple[str, ...]
    pos: int | None = _field(default=None, compare=False, repr=False)  # where it was written


@dataclass(frozen=True)
class SortKey:
    """One key of ``sort``."""

    name: str
    descending: bool = False


@dataclass(frozen=True)
class Sort:
    """``| sort by a desc, b``."""

    keys: tuple[SortKey, ...]
    pos: int | None = _field(default=None, compare=False, repr=False)  # where it was written


@dataclass(frozen=True)
class Limit:
    """``| limit N`` (``head N`` is the same)."""

    count: int


@dataclass(frozen=True)
class Stats:
    """``| stats fn(..) [as n], … [by f, …]``."""

    aggs: tuple[Agg, ...]
    by: tuple[str, ...] = ()
    pos: int | None = _field(default=None, compare=False, repr=False)  # where it was written


@dataclass(frozen=True)
class Timechart:
    """``| timechart span=1m fn(..) [by f]``: stats per time bucket."""

    span: str
    aggs: tuple[Agg, ...]
    by: tuple[str, ...] = ()
    pos: int | None = _field(default=None, compare=False, repr=False)  # where it was written


@dataclass(frozen=True)
class Top:
    """``| top N f`` (most frequent values) or, with ``rare``, the least frequent."""

    count: int
    field: str
    rare: bool = False
    pos: int | None = _field(default=None, compare=False, repr=False)  # where it was written


@dataclass(frozen=True)
class Dedup:
    """``| dedup f, …``: keep the first (newest by default) record of each value."""

    names: tuple[str, ...]
    pos: int | None = _field(default=None, compare=False, repr=False)  # where it was written


@dataclass(frozen=True)
class Patterns:
    """``| patterns``: the templates of the matching records with counts; with ``compare``
    (``| patterns compare 1h``), how each template's count changed against the period before."""

    compare: str | None = None
    pos: int | None = _field(default=None, compare=False, repr=False)  # where it was written


Pipe = Where | Fields | Sort | Limit | Stats | Timechart | Top | Dedup | Patterns


@dataclass(frozen=True)
class Query:
    """A whole query: one filter, then pipes in order."""

    filter: Filter
    pipes: tuple[Pipe, ...] = ()
