"""The nodes a LogQL query parses to: logharbor's query AST inside small wrappers.

Why separate: the executor and the routes read these shapes without needing the parser.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from logharbor.server.query import ast
from logharbor.server.query.errors import QueryError

__all__ = [
    "LABEL_ALIASES",
    "Binary",
    "Constant",
    "Expr",
    "LabelFormat",
    "LogQLError",
    "LogQuery",
    "Metric",
    "RangeAgg",
    "VectorAgg",
    "arith", "combine",
    "field_name",
]

#: what the subset covers, by name (anything else named here is refused by name)
RANGE_FUNCTIONS = {"count_over_time", "rate", "bytes_over_time", "bytes_rate", "absent_over_time",
                   "sum_over_time", "avg_over_time", "min_over_time", "max_over_time", "quantile_over_time",
                   "first_over_time", "last_over_time"}
UNWRAP_FUNCTIONS = {"sum_over_time", "avg_over_time", "min_over_time", "max_over_time", "quantile_over_time",
                    "first_over_time", "last_over_time"}
VECTOR_OPS = {"sum", "avg", "min", "max", "count", "topk", "bottomk"}
KNOWN_UNSUPPORTED = {
    "stddev_over_time", "stdvar_over_time", "rate_counter", "stddev", "stdvar", "sort", "sort_desc",
    "label_replace", "unpack", "distinct", "offset", "on", "ignoring", "group_left", "group_right",
}

#: Loki label names Grafana uses that are spelled differently in logharbor
LABEL_ALIASES = {"service_name": "service", "detected_level": "level"}


class LogQLError(QueryError):
    """A LogQL query outside the supported subset, or not LogQL at all."""

    code = "invalid_logql"


def field_name(label: str) -> str:
    """The logharbor field a Loki label name stands for (``service_name`` → ``service``)."""
    return LABEL_ALIASES.get(label, label)


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
    extractors: tuple[re.Pattern[str], ...] = ()  # | regexp / | pattern, applied to the line for output
    line_format: str | None = None
    label_formats: tuple[LabelFormat, ...] = ()
    unwrap: str | None = None
    keep: tuple[str, ...] | None = None  # | keep a, b: only these stream labels
    drop: tuple[str, ...] = ()  # | drop a, b: not these
    decolorize: bool = False  # | decolorize: ANSI colour codes removed from the line shown


@dataclass(frozen=True)
class RangeAgg:
    """``count_over_time({…}[5m])`` and friends: one value per stream and step."""

    fn: str
    log: LogQuery
    range_ns: int
    quantile: float | None = None


@dataclass(frozen=True)
class VectorAgg:
    """``sum by (service) (…)``, ``topk(5, …)``: series combined per step."""

    op: str
    inner: RangeAgg | VectorAgg | Binary
    by: tuple[str, ...] | None = None
    without: tuple[str, ...] | None = None
    param: int | None = None


@dataclass(frozen=True)
class Constant:
    """A constant such as ``vector(1)+vector(1)`` (Grafana's health check)."""

    value: float
    is_vector: bool = True


@dataclass(frozen=True)
class Binary:
    """``a / b``, ``sum(rate(…)) * 60``: arithmetic between metric queries and numbers, series
    matched on identical label sets (PromQL's one-to-one matching)."""

    op: str
    left: RangeAgg | VectorAgg | Binary | Constant
    right: RangeAgg | VectorAgg | Binary | Constant


Expr = LogQuery | RangeAgg | VectorAgg | Constant | Binary
Metric = RangeAgg | VectorAgg | Binary


def arith(op: str, a: float, b: float) -> float:
    """``a op b`` as PromQL computes it (a division by zero is ±Inf, or NaN for 0/0)."""
    if op == "/" and b == 0:
        return float("nan") if a == 0 or math.isnan(a) else math.copysign(math.inf, a)
    return {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else 0.0}[op]


def combine(op: str, pos: int, left: Expr, right: Expr) -> Expr:
    """Constants fold; metric queries combine; a log query cannot take part."""
    if isinstance(left, LogQuery) or isinstance(right, LogQuery):
        raise LogQLError(f"'{op}' needs metric queries or numbers on both sides, not a log query "
                         f"(at {pos})", pos)
    if isinstance(left, Constant) and isinstance(right, Constant):
        return Constant(arith(op, left.value, right.value), left.is_vector or right.is_vector)
    return Binary(op, left, right)
