"""The nodes a LogQL query parses to: logharbor's query AST inside small wrappers.

Why separate: the executor and the routes read these shapes without needing the parser.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from logharbor.server.features.query import ast
from logharbor.server.features.query.errors import QueryError

__all__ = [
    "LABEL_ALIASES",
    "Binary",
    "Constant",
    "Expr",
    "LabelFormat",
    "LabelReplace",
    "LogQLError",
    "LogQuery",
    "Matching",
    "Metric",
    "RangeAgg",
    "VectorAgg",
    "arith",
    "combine",
    "field_name",
    "label_paths",
]

#: what the subset covers, by name (anything else named here is refused by name)
RANGE_FUNCTIONS = {"count_over_time", "rate", "bytes_over_time", "bytes_rate", "absent_over_time",
                   "sum_over_time", "avg_over_time", "min_over_time", "max_over_time", "quantile_over_time",
                   "first_over_time", "last_over_time", "stddev_over_time", "stdvar_over_time",
                   "rate_counter"}
#: range functions that read unwrapped values (Loki's "invalid aggregation … without unwrap");
#: ``rate`` takes an unwrap too (the per-second sum of the values)
UNWRAP_FUNCTIONS = {"sum_over_time", "avg_over_time", "min_over_time", "max_over_time", "quantile_over_time",
                    "first_over_time", "last_over_time", "stddev_over_time", "stdvar_over_time",
                   "rate_counter"}
#: range functions that may take ``by``/``without`` (Loki's RangeAggregationExpr.validate)
GROUPABLE = {"avg_over_time", "stddev_over_time", "stdvar_over_time", "quantile_over_time", "max_over_time",
             "min_over_time", "first_over_time", "last_over_time"}
VECTOR_OPS = {"sum", "avg", "min", "max", "count", "topk", "bottomk", "stddev", "stdvar", "sort", "sort_desc",
              "approx_topk"}
#: words logharbor knows from other query languages, refused by name (never "unknown syntax")
KNOWN_UNSUPPORTED = {"distinct", "count_values", "quantile", "histogram_quantile", "absent", "sgn"}

#: Loki label names Grafana uses that are spelled differently in logharbor
LABEL_ALIASES = {"service_name": "service", "detected_level": "level"}


class LogQLError(QueryError):
    """A LogQL query outside the supported subset, or not LogQL at all."""

    code = "invalid_logql"


#: this request's Loki label names of stored attribute paths (``k8s_namespace_name`` →
#: ``k8s.namespace.name``), set by the routes for the work of one request (:func:`label_paths`)
_LABEL_PATHS: ContextVar[Mapping[str, str] | None] = ContextVar("loki_label_paths", default=None)


def field_name(label: str) -> str:
    """The logharbor field a Loki label name stands for: ``service_name`` → ``service``, and the
    underscore form of a stored attribute path (what Grafana shows and writes) → that path."""
    alias = LABEL_ALIASES.get(label)
    if alias is not None:
        return alias
    paths = _LABEL_PATHS.get()
    return paths.get(label, label) if paths else label


@contextmanager
def label_paths(mapping: Mapping[str, str]) -> Iterator[None]:
    """Within the block, :func:`field_name` also reads ``mapping`` (label name → attribute path)."""
    token = _LABEL_PATHS.set(mapping)
    try:
        yield
    finally:
        _LABEL_PATHS.reset(token)


@dataclass(frozen=True)
class LabelFormat:
    """One ``label_format`` item: ``new=old`` (a rename) or ``new="{{.a}}-{{.b}}"`` (a template)."""

    name: str
    source: str | None = None
    template: str | None = None


@dataclass(frozen=True)
class LogQuery:
    """A log query: the AST filter plus what shapes the lines and labels of its answer."""

    query: ast.Query
    selector: tuple[str, ...]  # labels named in the stream selector (always stream labels)
    parsed: bool = False  # | json / | logfmt: attributes are shown as stream labels
    extractors: tuple[Any, ...] = ()  # | regexp / | pattern (RE2), applied to the line for output
    line_format: str | None = None
    label_formats: tuple[LabelFormat, ...] = ()
    unwrap: str | None = None
    keep: tuple[str, ...] | None = None  # | keep a, b: only these stream labels
    drop: tuple[str, ...] = ()  # | drop a, b: not these
    decolorize: bool = False  # | decolorize: ANSI colour codes removed from the line shown
    conversion: str | None = None  # | unwrap duration(f) / duration_seconds(f) / bytes(f)
    unpack: bool = False  # | unpack: the line shown is the packed `_entry`
    #: | drop a="x" / | keep a=~"y": (name, op, value) — a label dropped (kept) when its value matches
    drop_if: tuple[tuple[str, str, str], ...] = ()
    keep_if: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class RangeAgg:
    """``count_over_time({…}[5m])`` and friends: one value per stream and step."""

    fn: str
    log: LogQuery
    range_ns: int
    quantile: float | None = None
    by: tuple[str, ...] | None = None  # `max_over_time(…) by (host)`: streams merged per group
    without: tuple[str, ...] | None = None
    offset_ns: int = 0  # `[5m] offset 1h`: the window ends an hour before each step


@dataclass(frozen=True)
class VectorAgg:
    """``sum by (service) (…)``, ``topk(5, …)``: series combined per step."""

    op: str
    inner: Metric
    by: tuple[str, ...] | None = None
    without: tuple[str, ...] | None = None
    param: int | None = None


@dataclass(frozen=True)
class Constant:
    """A constant such as ``vector(1)+vector(1)`` (Grafana's health check)."""

    value: float
    is_vector: bool = True


@dataclass(frozen=True)
class Matching:
    """How a binary operation pairs series (PromQL's vector matching): on all labels, ``on (…)``
    or ``ignoring (…)``; ``group_left``/``group_right`` for many-to-one, with labels to copy."""

    on: tuple[str, ...] | None = None
    ignoring: tuple[str, ...] = ()
    card: str = "one-to-one"  # or many-to-one (group_left), one-to-many (group_right)
    include: tuple[str, ...] = ()


@dataclass(frozen=True)
class Binary:
    """``a / b``, ``a > bool 3``, ``a and on (x) b``: arithmetic, comparisons and set operators
    between metric queries and numbers, per step, series paired as :class:`Matching` says."""

    op: str
    left: Metric | Constant
    right: Metric | Constant
    bool: bool = False
    matching: Matching = Matching()


@dataclass(frozen=True)
class LabelReplace:
    """``label_replace(v, dst, replacement, src, regex)``: PromQL's, with an RE2 regex."""

    inner: Metric | Constant
    dst: str
    replacement: str
    src: str
    regex: str


Expr = LogQuery | RangeAgg | VectorAgg | Constant | Binary | LabelReplace
Metric = RangeAgg | VectorAgg | Binary | LabelReplace

ARITHMETIC = ("+", "-", "*", "/", "%", "^")
COMPARISONS = ("==", "!=", ">", ">=", "<", "<=")
SET_OPS = ("and", "or", "unless")


def arith(op: str, a: float, b: float) -> float:
    """``a op b`` as Loki's MergeBinOp computes it: a division or modulo by zero is NaN;
    comparisons give 1 or 0."""
    if op in ("/", "%") and b == 0:
        return math.nan
    if op == "/":
        return a / b
    if op == "%":
        return math.fmod(a, b)
    if op == "^":
        try:
            return math.pow(a, b)
        except (OverflowError, ValueError):
            return math.inf if a > 0 else math.nan
    if op in COMPARISONS:
        return float({"==": a == b, "!=": a != b, ">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op])
    return {"+": a + b, "-": a - b, "*": a * b}[op]


def combine(op: str, pos: int, left: Expr, right: Expr, *, is_bool: bool = False,
            matching: Matching | None = None) -> Expr:
    """Constants fold (comparisons of two numbers give 1 or 0, as in Loki); metric queries
    combine; a log query cannot take part, nor a number in a set operation."""
    if isinstance(left, LogQuery) or isinstance(right, LogQuery):
        raise LogQLError(f"'{op}' needs metric queries or numbers on both sides, not a log query "
                         f"(at {pos})", pos)
    if op in SET_OPS and any(isinstance(x, Constant) and not x.is_vector for x in (left, right)):
        raise LogQLError(f"'{op}' is a set operation between metric queries; a number cannot take part "
                         f"(at {pos})", pos)
    if isinstance(left, Constant) and isinstance(right, Constant) and op not in SET_OPS:
        return Constant(arith(op, left.value, right.value), left.is_vector or right.is_vector)
    return Binary(op, left, right, is_bool, matching or Matching())
