"""Retention rules: which records go to which tier at which age, and which fraction is kept.

A rule matches records by ``service``, ``source``, ``level`` and ``tenant`` (each a value or a
list; absent matches anything). Every record belongs to exactly one rule: the most specific one
that matches (most match keys set; the earlier rule wins a tie). Records no rule matches stay hot
forever. Each rule gives tier *end ages*: a record younger than ``hot`` is hot, younger than
``warm`` is warm, younger than ``cold`` is cold; unset tiers are skipped. ``delete`` is the age
at which the record goes; without it, a record goes when it leaves its last tier, and ``never``
keeps it in its last tier for good. ``sample`` keeps a fraction of the rule's records after an
age, chosen by a hash of the trace id (else the request id), so a kept request keeps every line.

The SQL built here is a condition over the logs table's columns with every value a parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from logharbor.models import InputModel
from logharbor.server.features.query.timeparse import TimeParseError, parse_duration_ns

__all__ = ["TIERS", "Match", "Plan", "RetentionPolicy", "Rule", "Sample", "Window", "keep_sql"]

TIERS = ("hot", "warm", "cold")
Tier = Literal["hot", "warm", "cold"]
_MATCH_KEYS = ("tenant", "service", "source", "level")
#: the hash space of the sampling decision: keep when hash % 10000 < fraction * 10000
SAMPLE_SCALE = 10_000


def _duration(value: str | None, key: str) -> int | None:
    if value is None:
        return None
    try:
        ns = parse_duration_ns(value)
    except (TimeParseError, ValueError, KeyError) as exc:
        raise ValueError(f"{key}: {value!r} is not a duration like 7d, 12h or 30m") from exc
    if ns <= 0:
        raise ValueError(f"{key}: must be longer than zero")
    return ns


class Match(BaseModel):
    """Which records a rule is for; every key set must match (values of a list are alternatives)."""

    model_config = ConfigDict(extra="forbid")

    service: str | list[str] | None = None
    source: str | list[str] | None = None
    level: str | list[str] | None = None
    tenant: str | list[str] | None = None

    @field_validator("level")
    @classmethod
    def _upper(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list):
            return [v.upper() for v in value]
        return value.upper() if isinstance(value, str) else value

    def values(self, key: str) -> list[str] | None:
        value = getattr(self, key)
        if value is None:
            return None
        return [value] if isinstance(value, str) else list(value)

    @property
    def specificity(self) -> int:
        return sum(1 for key in _MATCH_KEYS if getattr(self, key) is not None)

    def sql(self, params: dict[str, object], prefix: str) -> str:
        """The condition as SQL; values become parameters named ``{prefix}_{key}``."""
        parts = []
        for key in _MATCH_KEYS:
            values = self.values(key)
            if values is None:
                continue
            names = []
            for k, value in enumerate(values):
                name = f"{prefix}_{key}{k}"
                params[name] = value
                names.append(f"{{{name}:String}}")
            parts.append(f"{key} IN ({', '.join(names)})")
        return " AND ".join(parts) if parts else "1"


class Sample(InputModel):
    """Keep ``keep`` (0–1) of the rule's records once they are older than ``after``."""

    model_config = ConfigDict(extra="forbid")

    after: str
    keep: float = Field(ge=0.0, le=1.0)

    @field_validator("after")
    @classmethod
    def _check_after(cls, value: str) -> str:
        _duration(value, "sample.after")
        return value

    @property
    def after_ns(self) -> int:
        return _duration(self.after, "sample.after") or 0


class Rule(InputModel):
    """One retention rule (see the module docstring for what the ages mean)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    match: Match = Field(default_factory=Match)
    priority: int = Field(0, description="the disk guard frees the lowest priority first")
    hot: str | None = None
    warm: str | None = None
    cold: str | None = None
    delete: str | None = None
    sample: Sample | None = None

    @model_validator(mode="after")
    def _check_ages(self) -> Rule:
        last = 0
        for tier in TIERS:
            ns = _duration(getattr(self, tier), tier)
            if ns is None:
                continue
            if ns <= last:
                raise ValueError(f"{tier}: tier end ages must grow from hot to warm to cold")
            last = ns
        if self.delete not in (None, "never"):
            ns = _duration(self.delete, "delete")
            if ns is not None and ns < last:
                raise ValueError("delete: must not be younger than the end of the last tier")
        return self

    def age_ns(self, tier: str) -> int | None:
        return _duration(getattr(self, tier), tier)

    def plan(self) -> Plan:
        """The rule's tiers as age windows, and the age at which its records are deleted."""
        ends = [(t, self.age_ns(t)) for t in TIERS if getattr(self, t) is not None]
        delete_ns: int | None
        if self.delete == "never":
            delete_ns = None
        elif self.delete is not None:
            delete_ns = _duration(self.delete, "delete")
        else:
            delete_ns = ends[-1][1] if ends else None
        if not ends:
            return Plan((Window("hot", 0, delete_ns),), delete_ns)
        if ends[0][0] != "hot":  # no hot age: records leave hot at once
            ends.insert(0, ("hot", 0))
        windows = []
        start = 0
        for i, (tier, end) in enumerate(ends):
            last = i == len(ends) - 1
            stop = delete_ns if last else end
            if stop is None or stop > start:
                windows.append(Window(tier, start, stop))  # type: ignore[arg-type]
            start = end or 0
        return Plan(tuple(windows), delete_ns)


@dataclass(frozen=True)
class Window:
    """Records of age ``lo`` ≤ age < ``hi`` (``hi`` None: no end) belong in ``tier``."""

    tier: Tier
    lo: int
    hi: int | None


@dataclass(frozen=True)
class Plan:
    """Where a rule's records belong by age."""

    windows: tuple[Window, ...]
    delete_ns: int | None

    def tier_at(self, age_ns: int) -> str | None:
        """The tier of a record of this age, or None when it is to be deleted."""
        if self.delete_ns is not None and age_ns >= self.delete_ns:
            return None
        for window in self.windows:
            if age_ns >= window.lo and (window.hi is None or age_ns < window.hi):
                return window.tier
        return self.windows[-1].tier if self.windows else "hot"


class RetentionPolicy(BaseModel):
    """The whole retention configuration: ``{"rules": [...]}`` (also the YAML file's shape)."""

    model_config = ConfigDict(extra="forbid")

    rules: list[Rule] = Field(default_factory=list)

    @field_validator("rules")
    @classmethod
    def _unique(cls, rules: list[Rule]) -> list[Rule]:
        names = [r.name for r in rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names must be unique: {', '.join(dupes)}")
        return rules

    def ordered(self) -> list[Rule]:
        """Rules in the order they claim records: most specific first, then as written."""
        order = {id(rule): i for i, rule in enumerate(self.rules)}
        return sorted(self.rules, key=lambda r: (-r.match.specificity, order[id(r)]))

    def rule_for(self, record: dict[str, str]) -> Rule | None:
        """The rule a record belongs to (used by tests and by preview of single records)."""
        for rule in self.ordered():
            if _matches(rule.match, record):
                return rule
        return None

    def conditions(self) -> list[tuple[Rule, str, dict[str, object]]]:
        """Each rule with the SQL condition of exactly its records (it matches, no earlier rule does)."""
        out: list[tuple[Rule, str, dict[str, object]]] = []
        for i, rule in enumerate(self.ordered()):
            params: dict[str, object] = {}
            mine = rule.match.sql(params, f"r{i}")
            for j, other in enumerate(self.ordered()[:i]):
                earlier_sql = other.match.sql(params, f"r{j}")
                if earlier_sql == "1":
                    mine = "0"
                    break
                mine = f"{mine} AND NOT ({earlier_sql})"
            out.append((rule, f"({mine})", params))
        return out


def _matches(match: Match, record: dict[str, str]) -> bool:
    for key in _MATCH_KEYS:
        values = match.values(key)
        if values is not None and str(record.get(key, "")) not in values:
            return False
    return True


def keep_sql(fraction_param: str) -> str:
    """True for the records a sample keeps: one hash per trace (else request, else record)."""
    key = ("if(trace_id != '', trace_id, if(request_id != '', request_id, "
           "toString(sipHash64(timestamp, message))))")
    return f"(cityHash64({key}) % {SAMPLE_SCALE}) < {{{fraction_param}:UInt32}}"


def sample_threshold(keep: float) -> int:
    """The hash bound for a keep fraction."""
    return round(keep * SAMPLE_SCALE)


def rules_summary(rules: Sequence[Rule]) -> list[str]:
    """One line per rule, for logs and the CLI."""
    return [f"{r.name}: {r.plan()}" for r in rules]
