"""Alert rules: the pydantic model, its validation, and how a rule becomes queries and a verdict.

A rule is written in the query language and compiled by the same compiler as a search
(DESIGN §3 "Query language"); the evaluator never has a second engine. The two seed examples::

    name: too many errors            # "more than 10 ERROR records in the last 5 minutes"
    query: level:ERROR
    condition: count > 10
    window: 5m

    name: error burst                # "error count > 5 in 1 minute"
    query: level:ERROR
    condition: count > 5
    window: 1m

Conditions: ``count > N`` (records matching the query), ``ratio(<filter>) > X`` (records that
also match ``<filter>`` over all records of the query, e.g. 5xx over all requests), ``<column> > X``
(a column of the query's own ``| stats … by …``), and ``absent`` (no matching record in the
window). The object form (``{type, op, threshold, numerator, column}``) says the same.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from logharbor.server.query import (
    QueryError,
    TimeParseError,
    compile_ast,
    parse,
    parse_duration_ns,
)
from logharbor.server.query import ast as qast
from logharbor.server.query.fields import resolve_field

__all__ = ["Condition", "GroupResult", "Rule", "duration_ns", "render_template", "validation_message"]

Op = Literal[">", ">=", "<", "<="]
_NUMBER = r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?"
_SHORTHAND = re.compile(rf"^\s*(?P<lhs>.+?)\s*(?P<op>>=|<=|>|<)\s*(?P<num>{_NUMBER})\s*$", re.DOTALL)
_RATIO = re.compile(r"^ratio\s*\((?P<num>.*)\)$", re.DOTALL)
_TEMPLATE = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")
_VALUE = "_lh_value"
_TOTAL = "_lh_total"
MAX_GROUPS = 1000  # groups evaluated per rule and slot
_NAME = re.compile(r"^[^/\x00-\x1f]{1,200}$")


def duration_ns(text: str, *, allow_zero: bool = False) -> int:
    """A duration such as ``5m``; ``0``/``0s`` only where ``allow_zero``."""
    if allow_zero and text.strip() in ("0", "0s", "0m"):
        return 0
    return parse_duration_ns(text)


class Condition(BaseModel):
    """What makes a group active: a value compared with a threshold, or absence of records."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["count", "ratio", "value", "absence"] = "count"
    op: Op = ">"
    threshold: float = 0.0
    numerator: str | None = Field(None, description="ratio: filter of the counted part (e.g. status:>=500)")
    column: str | None = Field(None, description="value: the stats column compared with the threshold")

    @classmethod
    def parse_text(cls, text: str) -> Condition:
        """``count > 10``, ``ratio(status:>=500) > 0.05``, ``p99 >= 800``, ``absent``."""
        stripped = text.strip()
        if stripped in ("absent", "absence"):
            return cls(type="absence")
        m = _SHORTHAND.match(stripped)
        if m is None:
            raise ValueError(f"condition {text!r} is not '<count|ratio(filter)|column> <op> <number>' "
                             "or 'absent'")
        lhs, op, threshold = m["lhs"].strip(), m["op"], float(m["num"])
        ratio = _RATIO.match(lhs)
        if lhs == "count":
            return cls(type="count", op=op, threshold=threshold)  # type: ignore[arg-type]
        if ratio is not None:
            return cls(type="ratio", op=op, threshold=threshold,  # type: ignore[arg-type]
                       numerator=ratio["num"].strip())
        return cls(type="value", op=op, threshold=threshold, column=lhs)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _check(self) -> Condition:
        if not math.isfinite(self.threshold):
            raise ValueError("threshold must be a finite number")
        if self.type == "ratio":
            if not self.numerator:
                raise ValueError("a ratio condition needs 'numerator' (the filter of the counted part)")
            if not 0 <= self.threshold <= 1:
                raise ValueError(f"a ratio threshold is between 0 and 1, not {self.threshold}")
        elif self.numerator is not None:
            raise ValueError("'numerator' is only for ratio conditions")
        if self.type == "value" and not self.column:
            raise ValueError("a value condition needs 'column' (a column of the query's stats)")
        if self.type == "count" and self.threshold < 0:
            raise ValueError(f"a count threshold cannot be negative ({self.threshold})")
        return self

    def holds(self, value: float | None) -> bool:
        """Whether ``value`` meets the condition (absence: a count of zero)."""
        if self.type == "absence":
            return value is not None and value == 0
        if value is None or math.isnan(value):
            return False
        t = self.threshold
        return {">": value > t, ">=": value >= t, "<": value < t, "<=": value <= t}[self.op]

    def text(self) -> str:
        """The condition in its text form, as the CLI and messages show it."""
        if self.type == "absence":
            return "absent"
        lhs = {"count": "count", "ratio": f"ratio({self.numerator})", "value": self.column}[self.type]
        return f"{lhs} {self.op} {self.threshold:g}"


@dataclass(frozen=True)
class GroupResult:
    """One group's value in one evaluation; ``labels`` are the group-by values (empty: no group)."""

    labels: dict[str, str]
    value: float | None

    @property
    def key(self) -> str:
        """The group's identity in the state table: its labels as canonical JSON."""
        return orjson.dumps(self.labels, option=orjson.OPT_SORT_KEYS).decode()


class Rule(BaseModel):
    """One alert rule, as stored, as sent to the API and as written in a YAML rule file."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(..., min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    query: str = Field(..., min_length=1, max_length=16 * 1024)
    condition: Condition
    window: str = Field("5m", description="how far back each evaluation looks")
    interval: str = Field("1m", description="how often the rule is evaluated")
    for_: str = Field("0s", alias="for", description="how long the condition must hold before firing")
    group_by: list[str] = Field(default_factory=list, description="one alert per value of these fields")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict, description="text with {{service}} {{value}}")
    channels: list[str] = Field(default_factory=list)
    delay: str = Field("0s", description="look at the window ending this long before the slot (late logs)")
    repeat_interval: str | None = Field(None, description="notify again while firing, this often")
    max_notifications_per_hour: int = Field(20, ge=1, le=10_000, description="per-rule rate limit")
    enabled: bool = True

    @field_validator("condition", mode="before")
    @classmethod
    def _condition_text(cls, value: Any) -> Any:
        return Condition.parse_text(value) if isinstance(value, str) else value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value) or value.strip() != value:
            raise ValueError("a rule name has no '/', no control characters and no outer spaces")
        return value

    @model_validator(mode="after")
    def _check(self) -> Rule:
        for field, text, zero in (("window", self.window, False), ("interval", self.interval, False),
                                  ("for", self.for_, True), ("delay", self.delay, True),
                                  ("repeat_interval", self.repeat_interval, False)):
            if text is None:
                continue
            try:
                duration_ns(text, allow_zero=zero)
            except TimeParseError as exc:
                raise ValueError(f"{field}: {exc}") from None
        if self.interval_ns < 10 * 10**9:
            raise ValueError("interval must be at least 10s")
        if self.window_ns > 31 * 86400 * 10**9:
            raise ValueError("window must be at most 31d")
        for name in self.group_by:
            try:
                ref = resolve_field(name)
            except QueryError as exc:
                raise ValueError(f"group_by: {exc.message}") from None
            if ref.kind in ("json", "time"):
                raise ValueError(f"group_by: cannot group by {name!r}")
        self.compile(0)  # the query, numerator and column must compile (raises ValueError)
        allowed = {"value", "threshold", "rule", "window", *self.group_labels(), "labels"}
        for key, text in self.annotations.items():
            for name in _TEMPLATE.findall(text):
                root = name.split(".", 1)[0]
                if root not in allowed or (root == "labels" and name[7:] not in self.labels):
                    raise ValueError(f"annotation {key!r}: unknown template name {{{{{name}}}}}; "
                                     f"known: {', '.join(sorted(allowed - {'labels'}))}, labels.<label>")
        return self

    # ------------------------------------------------------------------ durations

    @property
    def window_ns(self) -> int:
        """``window`` in ns."""
        return duration_ns(self.window)

    @property
    def interval_ns(self) -> int:
        """``interval`` in ns."""
        return duration_ns(self.interval)

    @property
    def for_ns(self) -> int:
        """``for`` in ns (0 fires at once)."""
        return duration_ns(self.for_, allow_zero=True)

    @property
    def repeat_ns(self) -> int | None:
        """``repeat_interval`` in ns, or None for no repeats."""
        return duration_ns(self.repeat_interval) if self.repeat_interval else None

    # ------------------------------------------------------------------ compile

    def _parsed(self) -> qast.Query:
        try:
            return parse(self.query)
        except QueryError as exc:
            raise ValueError(f"query: {exc.message}") from None

    def group_labels(self) -> list[str]:
        """The group-by fields: ``group_by``, or the ``by`` of the query's stats for value rules."""
        if self.condition.type == "value":
            stats = [p for p in self._parsed().pipes if isinstance(p, qast.Stats)]
            return list(stats[-1].by) if stats else []
        return list(self.group_by)

    def compile(self, at_ns: int, *, table: str = "logs",
                scope: tuple[str, dict[str, object]] | None = None) -> list[tuple[str, Any]]:
        """The compiled queries of one evaluation over ``[at - delay - window, at - delay)``.

        Returns ``[(role, CompiledQuery)]``.

        Roles: ``value`` (count or stats), and for ratios ``total`` and ``value`` (the numerator).
        Raises ValueError naming what is wrong, for the API's 400.
        """
        query = self._parsed()
        end = at_ns - duration_ns(self.delay, allow_zero=True) if at_ns else None
        start = end - self.window_ns if end is not None else None

        def build(q: qast.Query, role: str) -> tuple[str, Any]:
            try:
                return role, compile_ast(q, table=table, time_from_ns=start, time_to_ns=end,
                                         limit=MAX_GROUPS, max_limit=MAX_GROUPS, now_ns=at_ns or None,
                                         scope_sql=scope)
            except QueryError as exc:
                raise ValueError(f"query: {exc.message}") from None

        cond = self.condition
        if cond.type == "value":
            if self.group_by:
                raise ValueError("group_by: a value rule groups by its query's 'stats … by …'")
            stats = [i for i, p in enumerate(query.pipes) if isinstance(p, qast.Stats)]
            if not stats:
                raise ValueError("query: a value condition needs a '| stats … [by …]' in the query")
            compiled = build(query, "value")
            if cond.column not in compiled[1].columns:
                raise ValueError(f"condition: column {cond.column!r} is not in the query's output "
                                 f"({', '.join(compiled[1].columns)})")
            return [compiled]
        if any(not isinstance(p, qast.Where) for p in query.pipes):
            raise ValueError("query: a count, ratio or absence rule takes a filter only (and '| where'); "
                             "use 'group_by' for groups, or a value condition over '| stats'")
        count = (qast.Stats((qast.Agg("count", None, _VALUE),), tuple(self.group_by)),)
        if cond.type != "ratio":
            return [build(qast.Query(query.filter, (*query.pipes, *count)), "value")]
        try:
            numerator = parse(cond.numerator or "")
        except QueryError as exc:
            raise ValueError(f"condition numerator: {exc.message}") from None
        if numerator.pipes:
            raise ValueError("condition numerator: a filter only, no pipes")
        both = qast.And((query.filter, numerator.filter))
        total = (qast.Stats((qast.Agg("count", None, _TOTAL),), tuple(self.group_by)),)
        return [build(qast.Query(query.filter, (*query.pipes, *total)), "total"),
                build(qast.Query(both, (*query.pipes, *count)), "value")]

    # ------------------------------------------------------------------ evaluate

    def evaluate(self, run_query: Any, at_ns: int, *, table: str,
                 known_groups: list[dict[str, str]] | None = None,
                 scope: tuple[str, dict[str, object]] | None = None) -> list[GroupResult]:
        """Every group's value over ``[at - window, at)``; ``run_query(sql, params) -> rows``.

        ``known_groups`` (groups with a state) count as 0 when no record matched them, so a count
        that drops to nothing resolves, and an absence rule sees a group that went quiet.
        ``scope`` confines a dry run by a scoped key to that key's records.
        """
        names = self.group_labels()
        out: dict[str, dict[str, Any]] = {}
        column = self.condition.column if self.condition.type == "value" else _VALUE
        for role, compiled in self.compile(at_ns, table=table, scope=scope):
            for row in run_query(compiled.sql, compiled.params):
                labels = {n: "" if row.get(n) is None else str(row.get(n)) for n in names}
                entry = out.setdefault(GroupResult(labels, None).key, {"labels": labels})
                entry[role] = row.get(_TOTAL if role == "total" else column)
        kind = self.condition.type
        for labels in known_groups or []:
            if kind in ("count", "absence", "ratio"):
                out.setdefault(GroupResult(labels, None).key, {"labels": labels})
        if not names and kind in ("count", "absence", "ratio"):
            out.setdefault(GroupResult({}, None).key, {"labels": {}})
        results = []
        for entry in out.values():
            value = _number(entry.get("value"))
            if kind in ("count", "absence"):
                value = value or 0.0
            elif kind == "ratio":
                total = _number(entry.get("total")) or 0.0
                value = (value or 0.0) / total if total else None
            results.append(GroupResult(entry["labels"], value))
        return results

    def render(self, labels: dict[str, str], value: float | None) -> dict[str, str]:
        """The annotations with ``{{…}}`` filled in for one group."""
        names: dict[str, str] = {"value": _fmt(value), "threshold": _fmt(self.condition.threshold),
                                 "rule": self.name, "window": self.window, **labels}
        names.update({f"labels.{k}": v for k, v in self.labels.items()})
        return {k: render_template(text, names) for k, text in self.annotations.items()}


def render_template(text: str, names: dict[str, str]) -> str:
    """``{{name}}`` → ``names[name]`` (unknown names stay as written)."""
    return _TEMPLATE.sub(lambda m: names.get(m[1], m[0]), text)


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}"


def validation_message(exc: ValidationError) -> str:
    """One line naming each bad field and why (for 400 answers and ``apply --check``)."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()))
        msg = str(error.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)
