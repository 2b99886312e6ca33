"""Alert conditions: what makes a group of a rule active, as text or as an object, and the
group values (:class:`GroupResult`) a condition judges.

``count > 10``, ``ratio(status:>=500) > 0.05``, ``p99 > 800`` and ``absent`` compare one value
with a threshold; ``anomaly`` compares a value with its own baseline (:mod:`.anomaly`) and
``new_pattern`` looks for message templates never seen before (:mod:`.newpattern`);
``clock_skew > 100`` fires when a host's clock is off by more than 100 ms (:mod:`.clockskew`). Options of
one kind are refused on another, so a typo in a rule file is an error, not a silent default.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from pydantic import ConfigDict, Field, model_serializer, model_validator

from logharbor.models import InputModel
from logharbor.server.features.query import TimeParseError, parse_duration_ns

__all__ = ["Condition", "GroupResult", "Op", "duration_ns"]

Op = Literal[">", ">=", "<", "<="]
_NUMBER = r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?"
_SHORTHAND = re.compile(rf"^\s*(?P<lhs>.+?)\s*(?P<op>>=|<=|>|<)\s*(?P<num>{_NUMBER})\s*$", re.DOTALL)
_RATIO = re.compile(r"^ratio\s*\((?P<num>.*)\)$", re.DOTALL)
_ANOMALY = re.compile(r"^anomaly(\s*\((?P<of>.*)\))?$", re.DOTALL)
_ANOMALY_FIELDS = {"metric", "baseline", "periods", "k", "min_mad", "min_change", "direction",
                   "numerator", "column"}
_PATTERN_FIELDS = {"min_level", "learning"}
_OPTIONAL = (_ANOMALY_FIELDS | _PATTERN_FIELDS) - {"numerator", "column"}


def duration_ns(text: str, *, allow_zero: bool = False) -> int:
    """A duration such as ``5m``; ``0``/``0s`` only where ``allow_zero``."""
    if allow_zero and text.strip() in ("0", "0s", "0m"):
        return 0
    return parse_duration_ns(text)


class Condition(InputModel):
    """What makes a group active: a value compared with a threshold, or absence of records."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["count", "ratio", "value", "absence", "anomaly", "new_pattern", "clock_skew"] = "count"
    op: Op = ">"
    threshold: float = 0.0
    numerator: str | None = Field(None, description="ratio: filter of the counted part (e.g. status:>=500)")
    column: str | None = Field(None, description="value: the stats column compared with the threshold")
    # anomaly: what is measured, against which baseline, how far is too far
    metric: Literal["count", "ratio", "value"] | None = Field(None, description="anomaly: the value judged")
    baseline: Literal["periods", "same_hour"] | None = Field(None, description="anomaly: earlier windows")
    periods: int | None = Field(None, description="anomaly: how many earlier windows (or days)")
    k: float | None = Field(None, description="anomaly: how many MADs from the median is anomalous")
    min_mad: float | None = Field(None, description="anomaly: floor of the MAD (count: 1, else 0)")
    min_change: float | None = Field(None, description="anomaly: smallest absolute change that fires")
    direction: Literal["up", "down", "both"] | None = Field(None, description="anomaly: which way")
    # new_pattern
    min_level: Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"] | None = Field(
        None, description="new_pattern: lowest level that counts (WARN)")
    learning: str | None = Field(None, description="new_pattern: how old a service must be (24h)")

    @classmethod
    def parse_text(cls, text: str) -> Condition:
        """``count > 10``, ``ratio(status:>=500) > 0.05``, ``p99 >= 800``, ``absent``."""
        stripped = text.strip()
        if stripped in ("absent", "absence"):
            return cls(type="absence")
        if stripped in ("new_pattern", "new pattern"):
            return cls(type="new_pattern")
        anomaly = _ANOMALY.match(stripped)
        if anomaly is not None:
            inner = anomaly["of"].strip() if anomaly["of"] is not None else "count"
            ratio = _RATIO.match(inner)
            if inner == "count":
                return cls(type="anomaly", metric="count")
            if ratio is not None:
                return cls(type="anomaly", metric="ratio", numerator=ratio["num"].strip())
            return cls(type="anomaly", metric="value", column=inner)
        m = _SHORTHAND.match(stripped)
        if m is None:
            raise ValueError(f"condition {text!r} is not '<count|ratio(filter)|column> <op> <number>' "
                             "or 'absent'")
        lhs, op, threshold = m["lhs"].strip(), m["op"], float(m["num"])
        ratio = _RATIO.match(lhs)
        if lhs == "count":
            return cls(type="count", op=op, threshold=threshold)  # type: ignore[arg-type]
        if lhs == "clock_skew":  # ms a host's clock is off (features/alerts/clockskew.py)
            return cls(type="clock_skew", op=op, threshold=threshold)  # type: ignore[arg-type]
        if ratio is not None:
            return cls(type="ratio", op=op, threshold=threshold,  # type: ignore[arg-type]
                       numerator=ratio["num"].strip())
        return cls(type="value", op=op, threshold=threshold, column=lhs)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _check(self) -> Condition:
        own = {"anomaly": _ANOMALY_FIELDS, "new_pattern": _PATTERN_FIELDS}.get(self.type, set())
        kind = f"{'an' if self.type[0] in 'aeiou' else 'a'} {self.type} condition"
        for name in sorted((_ANOMALY_FIELDS | _PATTERN_FIELDS) - {"numerator", "column"} - own):
            if getattr(self, name) is not None:
                raise ValueError(f"{name!r} is not an option of {kind}")
        if own and (self.op != ">" or self.threshold != 0):
            hint = " (it has 'k', 'min_mad' and 'min_change')" if self.type == "anomaly" else ""
            raise ValueError(f"{kind} has no 'op' or 'threshold'{hint}")
        if self.type == "anomaly":
            return self._check_anomaly()
        if self.type == "new_pattern":
            if self.numerator is not None or self.column is not None:
                raise ValueError("a new_pattern condition takes no 'numerator' or 'column'")
            self.min_level = self.min_level or "WARN"
            self.learning = self.learning or "24h"
            try:
                duration_ns(self.learning, allow_zero=True)
            except TimeParseError as exc:
                raise ValueError(f"learning: {exc}") from None
            return self
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
        if self.type == "clock_skew":
            if self.op not in (">", ">=") or self.threshold < 0:
                raise ValueError("a clock_skew condition is 'clock_skew > <ms>' (a threshold of 0 or more)")
            if self.column is not None:
                raise ValueError("a clock_skew condition takes no 'column'")
        if self.type == "count" and self.threshold < 0:
            raise ValueError(f"a count threshold cannot be negative ({self.threshold})")
        return self

    def _check_anomaly(self) -> Condition:
        self.metric = self.metric or ("ratio" if self.numerator else "value" if self.column else "count")
        if self.metric == "ratio" and not self.numerator:
            raise ValueError("an anomaly of a ratio needs 'numerator' (the filter of the counted part)")
        if self.metric == "value" and not self.column:
            raise ValueError("an anomaly of a value needs 'column' (a column of the query's stats)")
        if self.metric != "ratio" and self.numerator is not None:
            raise ValueError("'numerator' is only for an anomaly of a ratio")
        if self.metric != "value" and self.column is not None:
            raise ValueError("'column' is only for an anomaly of a value")
        self.baseline = self.baseline or "periods"
        self.periods = self.periods if self.periods is not None else (12 if self.baseline == "periods" else 7)
        if not 3 <= self.periods <= 60:
            raise ValueError(f"periods: between 3 and 60 earlier windows, not {self.periods}")
        self.k = 3.0 if self.k is None else self.k
        if not (math.isfinite(self.k) and self.k > 0):
            raise ValueError(f"k: a positive number of MADs, not {self.k}")
        self.min_mad = (1.0 if self.metric == "count" else 0.0) if self.min_mad is None else self.min_mad
        self.min_change = 0.0 if self.min_change is None else self.min_change
        for name in ("min_mad", "min_change"):
            number = getattr(self, name)
            if not (math.isfinite(number) and number >= 0):
                raise ValueError(f"{name}: a number of zero or more, not {number}")
        self.direction = self.direction or "up"
        return self

    @model_serializer(mode="wrap")
    def _drop_unused(self, handler: Any) -> dict[str, Any]:
        """Options another kind of condition has are left out (stored specs keep their shape)."""
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None or k not in _OPTIONAL}

    @property
    def metric_condition(self) -> Condition:
        """What an anomaly measures, as the plain condition that computes the same value."""
        if self.type != "anomaly":
            return self
        return Condition(type=self.metric or "count", numerator=self.numerator, column=self.column)

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
        if self.type == "new_pattern":
            return f"new_pattern (level >= {self.min_level}, learning {self.learning})"
        if self.type == "anomaly":
            inner = self.metric_condition
            of = {"count": "count", "ratio": f"ratio({inner.numerator})", "value": inner.column}[inner.type]
            return (f"anomaly({of}) {self.direction} > {self.k:g} MAD over {self.periods} "
                    f"{'days' if self.baseline == 'same_hour' else 'periods'}")
        if self.type == "clock_skew":
            return f"clock_skew {self.op} {self.threshold:g} ms"
        lhs = {"count": "count", "ratio": f"ratio({self.numerator})", "value": self.column}[self.type]
        return f"{lhs} {self.op} {self.threshold:g}"


@dataclass(frozen=True)
class GroupResult:
    """One group's value in one evaluation; ``labels`` are the group-by values (empty: no group)."""

    labels: dict[str, str]
    value: float | None
    active: bool | None = None  # the verdict, when the condition is more than a threshold (anomaly)
    details: dict[str, Any] | None = None  # what the alert payload says besides the value

    def holds(self, condition: Condition) -> bool:
        """Whether this group meets ``condition``."""
        return self.active if self.active is not None else condition.holds(self.value)

    @property
    def key(self) -> str:
        """The group's identity in the state table: its labels as canonical JSON."""
        return orjson.dumps(self.labels, option=orjson.OPT_SORT_KEYS).decode()
