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
``anomaly`` judges one of those values against its own baseline (:mod:`.anomaly`) and
``new_pattern`` alerts on message templates never seen before (:mod:`.newpattern`); the
condition model itself is in :mod:`.conditions`.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import (
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from logharbor.models import InputModel
from logharbor.server.features.query import (
    QueryError,
    TimeParseError,
    compile_ast,
    parse,
)
from logharbor.server.features.query import ast as qast
from logharbor.server.features.query.fields import resolve_field

from .anomaly import DAY_NS, PERIOD, judge, union_sql
from .clockskew import CLOCK_GROUP, clock_skew_results
from .conditions import Condition, GroupResult, duration_ns
from .newpattern import PATTERN_GROUP, new_pattern_query, new_pattern_results

__all__ = ["RULE_FIELDS", "Condition", "GroupResult", "Rule", "duration_ns", "field_errors",
           "render_template", "validation_message"]

_TEMPLATE = re.compile(r"\{\{\s*([A-Za-z_][\w.]*)\s*\}\}")
_VALUE = "_lh_value"
_TOTAL = "_lh_total"
MAX_GROUPS = 1000  # groups evaluated per rule and slot
_NAME = re.compile(r"^[^/\x00-\x1f]{1,200}$")
_DETAILS: dict[str, tuple[str, ...]] = {  # annotation names a kind of condition adds
    "anomaly": ("median", "mad", "k", "deviation"),
    "new_pattern": ("template", "sample", "count", "first_seen"),
    "clock_skew": ("offset", "uncertainty", "reference", "summary")}
_DETAILS.update(dict.fromkeys(("count", "ratio", "value", "absence"), ()))


class Rule(InputModel):
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

    @field_validator("query")
    @classmethod
    def _query_parses(cls, text: str) -> str:
        # said with the other fields' errors (a bad window does not hide a bad query); what it
        # compiles to is checked with the condition, once every field is valid
        try:
            parse(text)
        except QueryError as exc:
            raise ValueError(exc.message) from None
        return text

    @field_validator("window", "interval", "for_", "delay", "repeat_interval")
    @classmethod
    def _duration(cls, text: str | None, info: ValidationInfo) -> str | None:
        # one check per field, so every bad duration is named at once (each beside its field)
        if text is not None:
            try:
                duration_ns(text, allow_zero=info.field_name in ("for_", "delay"))
            except TimeParseError as exc:
                raise ValueError(str(exc)) from None
        return text

    @model_validator(mode="after")
    def _check(self) -> Rule:
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
        cond = self.condition
        if cond.type == "anomaly":
            if cond.baseline == "same_hour" and self.window_ns > DAY_NS:
                raise ValueError("window: a same_hour baseline compares windows of at most 1d")
            step = DAY_NS if cond.baseline == "same_hour" else self.window_ns
            if step * (cond.periods or 0) > 92 * DAY_NS:
                raise ValueError("condition: the baseline reaches back more than 92 days; use fewer periods")
        allowed = {"value", "threshold", "rule", "window", *self.group_labels(), "labels",
                   *_DETAILS[cond.type]}
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
        if self.condition.type == "new_pattern":
            return list(PATTERN_GROUP)
        if self.condition.type == "clock_skew":
            return list(CLOCK_GROUP)
        if self.condition.metric_condition.type == "value":
            stats = [p for p in self._parsed().pipes if isinstance(p, qast.Stats)]
            return list(stats[-1].by) if stats else []
        return list(self.group_by)

    def compile(self, at_ns: int, *, table: str = "logs",
                scope: tuple[str, dict[str, object]] | None = None,
                patterns_table: str | None = None) -> list[tuple[str, Any]]:
        """The compiled queries of one evaluation over ``[at - delay - window, at - delay)``.

        Returns ``[(role, CompiledQuery)]``.

        Roles: ``value`` (count or stats), and for ratios ``total`` and ``value`` (the numerator);
        an anomaly compiles what its ``metric`` would, a new_pattern rule its ``| patterns`` query.
        ``patterns_table`` (quoted) is what ``| patterns`` reads (default ``patterns``).
        Raises ValueError naming what is wrong, for the API's 400.
        """
        query = self._parsed()
        end = at_ns - duration_ns(self.delay, allow_zero=True) if at_ns else None
        start = end - self.window_ns if end is not None else None

        cond = self.condition.metric_condition
        # only a new_pattern rule reads the patterns table (older compilers take no such argument)
        extra = {"patterns_table": patterns_table} if patterns_table and cond.type == "new_pattern" else {}

        def build(q: qast.Query, role: str) -> tuple[str, Any]:
            try:
                return role, compile_ast(q, table=table, time_from_ns=start, time_to_ns=end,
                                         limit=MAX_GROUPS, max_limit=MAX_GROUPS, now_ns=at_ns or None,
                                         scope_sql=scope, **extra)
            except QueryError as exc:
                raise ValueError(f"query: {exc.message}") from None

        if cond.type == "clock_skew":  # reads the clock offsets, not records (alerts/clockskew.py)
            if self.query.strip() != "*" or query.pipes:
                raise ValueError("query: a clock_skew rule's query is '*' (it reads the clock offsets)")
            if self.group_by:
                raise ValueError("group_by: a clock_skew rule has one alert per clock")
            return []
        if cond.type == "new_pattern":
            if self.group_by:
                raise ValueError("group_by: a new_pattern rule has one alert per service and pattern")
            return [build(new_pattern_query(query, cond), "value")]
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
                 scope: tuple[str, dict[str, object]] | None = None,
                 patterns_table: str | None = None, clock_table: str | None = None) -> list[GroupResult]:
        """Every group's value over ``[at - window, at)``; ``run_query(sql, params) -> rows``.

        ``known_groups`` (groups with a state) count as 0 when no record matched them, so a count
        that drops to nothing resolves, and an absence rule sees a group that went quiet.
        ``scope`` confines the rule to a key's records: the rule's own scope when it was created by a
        scoped key, or the caller's on a dry run.
        """
        kind = self.condition.type
        if kind == "anomaly":
            return self._evaluate_anomaly(run_query, at_ns, table=table, known_groups=known_groups,
                                          scope=scope)
        if kind == "clock_skew":
            return clock_skew_results(self.condition, run_query, self._window(at_ns),
                                      clock_table=clock_table, scope=scope)
        if kind == "new_pattern":
            patterns_table = patterns_table or "`patterns`"
            [(_, compiled)] = self.compile(at_ns, table=table, scope=scope, patterns_table=patterns_table)
            return new_pattern_results(compiled, self.condition, run_query, self._window(at_ns),
                                       scope=scope, patterns_table=patterns_table)
        entries: dict[str, dict[str, Any]] = {}
        for role, compiled in self.compile(at_ns, table=table, scope=scope):
            self._collect(entries, role, run_query(compiled.sql, compiled.params))
        return [GroupResult(e["labels"], v) for e, v in self._values(entries, known_groups)]

    def _window(self, at_ns: int) -> tuple[int, int]:
        """What the evaluation at ``at_ns`` looks at: ``[start, end)``, the window ``delay`` back."""
        end = at_ns - duration_ns(self.delay, allow_zero=True)
        return end - self.window_ns, end

    def _collect(self, entries: dict[str, dict[str, Any]], role: str, rows: list[dict[str, Any]]) -> None:
        names = self.group_labels()
        cond = self.condition.metric_condition
        column = cond.column if cond.type == "value" else _VALUE
        for row in rows:
            labels = {n: "" if row.get(n) is None else str(row.get(n)) for n in names}
            entry = entries.setdefault(GroupResult(labels, None).key, {"labels": labels})
            entry[role] = row.get(_TOTAL if role == "total" else column)

    def _values(self, entries: dict[str, dict[str, Any]], known_groups: list[dict[str, str]] | None
                ) -> list[tuple[dict[str, Any], float | None]]:
        """Each group's value from its rows (count 0 for a group that was seen before, not now)."""
        kind = self.condition.metric_condition.type
        for labels in known_groups or []:
            if kind in ("count", "absence", "ratio"):
                entries.setdefault(GroupResult(labels, None).key, {"labels": labels})
        if not self.group_labels() and kind in ("count", "absence", "ratio"):
            entries.setdefault(GroupResult({}, None).key, {"labels": {}})
        out = []
        for entry in entries.values():
            value = _number(entry.get("value"))
            if kind in ("count", "absence"):
                value = value or 0.0
            elif kind == "ratio":
                total = _number(entry.get("total")) or 0.0
                value = (value or 0.0) / total if total else None
            out.append((entry, value))
        return out

    def _evaluate_anomaly(self, run_query: Any, at_ns: int, *, table: str,
                          known_groups: list[dict[str, str]] | None,
                          scope: tuple[str, dict[str, object]] | None) -> list[GroupResult]:
        """The current window (period 0) and ``periods`` earlier ones, one statement per role."""
        cond = self.condition
        step = DAY_NS if cond.baseline == "same_hour" else self.window_ns
        periods = cond.periods or 0
        by_role: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}
        for period in range(periods + 1):
            for role, compiled in self.compile(at_ns - period * step, table=table, scope=scope):
                by_role.setdefault(role, []).append((period, compiled.sql, compiled.params))
        per_period: list[dict[str, dict[str, Any]]] = [{} for _ in range(periods + 1)]
        for role, parts in by_role.items():
            sql, params = union_sql(parts)
            rows = run_query(sql, params)
            for period in range(periods + 1):
                self._collect(per_period[period], role, [r for r in rows if r.get(PERIOD) == period])
        groups: dict[str, dict[str, str]] = {}
        series: dict[str, list[float | None]] = {}
        counting = cond.metric == "count"
        for period, entries in enumerate(per_period):
            for entry, value in self._values(entries, known_groups if period == 0 else None):
                key = GroupResult(entry["labels"], None).key
                groups[key] = entry["labels"]
                series.setdefault(key, [0.0 if counting else None] * (periods + 1))[period] = value
        results = []
        for key, labels in list(groups.items())[:MAX_GROUPS]:
            values = series[key]
            baseline = [v for v in values[1:] if v is not None]
            active, verdict = judge(values[0], baseline, k=cond.k or 3.0, min_mad=cond.min_mad or 0.0,
                                    min_change=cond.min_change or 0.0, direction=cond.direction or "up",
                                    min_periods=(periods + 1) // 2)
            results.append(GroupResult(labels, values[0], active, dict(verdict)))
        return results

    def render(self, labels: dict[str, str], value: float | None,
               details: dict[str, Any] | None = None) -> dict[str, str]:
        """The annotations with ``{{…}}`` filled in for one group (``details``: anomaly, new_pattern)."""
        details = details or {}
        threshold = details.get("threshold", self.condition.threshold)
        names: dict[str, str] = {"value": _fmt(value), "threshold": _fmt(threshold),
                                 "rule": self.name, "window": self.window, **labels}
        for name in _DETAILS[self.condition.type]:
            item = details.get(name)
            names[name] = _fmt(item) if isinstance(item, int | float) or item is None else str(item)
        names.update({f"labels.{k}": v for k, v in self.labels.items()})
        out = {k: render_template(text, names) for k, text in self.annotations.items()}
        if self.condition.type == "clock_skew" and "summary" not in out and details.get("summary"):
            out["summary"] = str(details["summary"])  # "clock of web-3 is +340.0 ms off (…); NTP?"
        return out


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


#: the fields of a rule as the API names them (what ``field_errors`` may answer)
RULE_FIELDS = ("name", "description", "query", "condition", "window", "interval", "for", "group_by", "labels",
               "annotations", "channels", "delay", "repeat_interval", "max_notifications_per_hour", "enabled")
_OPENING = re.compile(r"(annotation|[a-z_]+)\b\s*:?\s*")


def _field_of(loc: tuple[Any, ...], message: str) -> tuple[str | None, str]:
    """The rule field one validation error is about (its location, else the name opening its
    message: the model's own checks say ``window: …``), and the message without that name."""
    if loc:
        first = str(loc[0])
        name = "for" if first == "for_" else first
        return name, message
    m = _OPENING.match(message)
    if m is None:
        return None, message
    name = "annotations" if m.group(1) == "annotation" else m.group(1)
    if name not in RULE_FIELDS:
        return None, message
    # "window: x" → "x"; "interval must be …" and "annotation 'k': …" keep their words
    return name, message[m.end():] if message[m.end(1):m.end()].strip() == ":" else message


def field_errors(exc: ValidationError) -> list[dict[str, str | None]]:
    """``[{"field", "message"}]`` per error (field None when it names none), for the 400's
    ``detail.fields``: a form shows each message beside its field."""
    out: list[dict[str, str | None]] = []
    for error in exc.errors():
        msg = str(error.get("msg", "")).removeprefix("Value error, ")
        field, text = _field_of(tuple(error.get("loc", ())), msg)
        out.append({"field": field, "message": text})
    return out


def validation_message(exc: ValidationError) -> str:
    """One line naming each bad field and why (for 400 answers and ``apply --check``)."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()))
        msg = str(error.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)
