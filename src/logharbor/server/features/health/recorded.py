"""Recording rules: numbers derived from logs, evaluated on an interval, scraped by Prometheus.

Why: teams alerting through Prometheus and Alertmanager want log-derived series (errors per
service, 5xx ratio, p99 latency) without a second query path. A recording rule is the alerting
rule form (DESIGN §3 "Alerts") with a ``record:`` name instead of channels: the same query,
window, interval, delay and ``group_by``, validated by the alert :class:`Rule` model and
evaluated by its ``evaluate`` on the alert scheduler's grid (as an evaluator job, under the same
lease). The latest value of each group is served at ``GET /metrics/recorded`` as a gauge whose
labels are the group's values plus the rule's ``labels``.

Rules are read at start from ``<data dir>/recording-rules.yaml`` (or ``$LOGHARBOR_RECORDING_RULES``)::

    rules:
      - record: logharbor:errors:count5m
        query: level:ERROR
        window: 5m
        interval: 1m
        group_by: [service]
        labels: {team: payments}
      - record: logharbor:http_5xx:ratio5m
        query: source:nginx
        condition: ratio(status:>=500) > 0     # only the left side matters: count, ratio(…), column
      - record: logharbor:latency:p99
        query: source:nginx | stats p99(duration_ms) as p99 by service
        value: p99                             # a column of the query's stats

or in Prometheus' rule-file shape, whose group ``interval`` and ``labels`` apply to its rules::

    groups:
      - name: checkout
        interval: 30s
        labels: {team: payments}
        rules:
          - record: logharbor:checkout_errors:count5m
            query: service:checkout AND level:ERROR
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from logharbor.server.features.alerts.evaluator import Job
from logharbor.server.features.alerts.rules import Condition, Rule, validation_message

__all__ = ["Recorder", "RecordingRule", "load_rules", "scope_allows", "start_recording"]

log = logging.getLogger("logharbor.server.features.health.recorded")

RULES_FILE = "recording-rules.yaml"
_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_BAD = re.compile(r"[^a-zA-Z0-9_]")
_COMPARED = re.compile(r"(>=|<=|>|<)\s*[-+]?[\d.]+(e[-+]?\d+)?\s*$")


def label_name(name: str) -> str:
    """A field name as a Prometheus label name (``http.status`` → ``http_status``)."""
    out = _LABEL_BAD.sub("_", name)
    return "_" + out if out[:1].isdigit() else out


class RecordingRule(BaseModel):
    """One recording rule: the alert rule form with ``record`` instead of a name and channels."""

    model_config = ConfigDict(extra="forbid")

    record: str = Field(..., description="the Prometheus metric name")
    query: str = Field(..., min_length=1)
    condition: str | None = Field(None, description="count (default), ratio(<filter>) or a stats column")
    value: str | None = Field(None, description="shorthand: the stats column to record")
    window: str = "5m"
    interval: str = "1m"
    delay: str = "0s"
    group_by: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    description: str = ""

    @model_validator(mode="after")
    def _check(self) -> RecordingRule:
        if not _METRIC.fullmatch(self.record):
            raise ValueError(f"record {self.record!r} is not a Prometheus metric name")
        for key in self.labels:
            if label_name(key) != key or key.startswith("__"):
                raise ValueError(f"labels: {key!r} is not a Prometheus label name")
        if self.value is not None and self.condition is not None:
            raise ValueError("give 'value' or 'condition', not both")
        self.rule()  # the alert model validates query, window, interval, group_by
        return self

    def rule(self) -> Rule:
        """The alert rule this recording evaluates (its condition only picks what is measured)."""
        if self.value is not None:
            condition = Condition(type="value", column=self.value, op=">", threshold=0)
        elif self.condition is not None:
            compared = _COMPARED.search(self.condition)  # "count > 10" as an alert has it
            condition = Condition.parse_text(self.condition if compared else f"{self.condition} > 0")
        else:
            condition = Condition(type="count", op=">", threshold=0)
        return Rule(name=self.record, query=self.query, condition=condition, window=self.window,
                    interval=self.interval, delay=self.delay, group_by=self.group_by,
                    labels=self.labels, description=self.description)


def _entries(path: Path, data: Any) -> list[tuple[str, dict[str, Any]]]:
    """(where, rule mapping) of each rule: from ``rules:``, a bare list, or Prometheus-style
    ``groups:`` whose ``interval`` and ``labels`` apply to their rules (a rule's own win)."""
    if isinstance(data, dict) and "groups" in data:
        out = []
        for g, group in enumerate(data["groups"] or []):
            if not isinstance(group, dict) or not isinstance(group.get("rules"), list):
                raise ValueError(f"{path}: groups[{g}]: a group needs a 'rules' list")
            extra = set(group) - {"name", "interval", "labels", "rules"}
            if extra:
                raise ValueError(f"{path}: groups[{g}]: unknown keys {sorted(extra)}")
            for i, item in enumerate(group["rules"]):
                if not isinstance(item, dict):
                    raise ValueError(f"{path}: groups[{g}].rules[{i}]: a rule is a mapping")
                merged = dict(item)
                if "interval" in group:
                    merged.setdefault("interval", group["interval"])
                merged["labels"] = {**(group.get("labels") or {}), **(item.get("labels") or {})}
                out.append((f"groups[{g}].rules[{i}]", merged))
        return out
    items = data.get("rules", []) if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError(f"{path}: 'rules' must be a list")
    return [(f"rules[{i}]", item) for i, item in enumerate(items)]


def load_rules(path: Path) -> list[RecordingRule]:
    """The rules of a YAML file (see the module docstring); errors name the rule and key."""
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    rules, names = [], set()
    for where, item in _entries(path, data):
        try:
            rule = RecordingRule.model_validate(item)
        except ValidationError as exc:
            raise ValueError(f"{path}: {where}: {validation_message(exc)}") from None
        if rule.record in names:
            raise ValueError(f"{path}: {where}: record {rule.record!r} is defined twice")
        names.add(rule.record)
        rules.append(rule)
    return rules


class Recorder(Collector):
    """Evaluates recording rules and keeps each one's latest values for the exposition."""

    def __init__(self, rules: list[RecordingRule], run_query: Callable[[str, Mapping[str, Any]], list[Any]],
                 table: str) -> None:
        self.rules = rules
        self.run_query = run_query
        self.table = table
        self._lock = threading.Lock()
        self._values: dict[str, list[tuple[dict[str, str], float]]] = {}
        self._last: dict[str, float] = {}
        self._errors: dict[str, int] = {r.record: 0 for r in rules}
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def record(self, rule: RecordingRule, at_ns: int) -> None:
        """One evaluation at ``at_ns``; groups seen before stay (at 0 for counts) until they age out."""
        with self._lock:
            known = [labels for labels, _ in self._values.get(rule.record, [])]
        try:
            results = rule.rule().evaluate(self.run_query, at_ns, table=self.table, known_groups=known)
        except Exception:
            with self._lock:
                self._errors[rule.record] += 1
            log.exception("recording rule %s failed", rule.record)
            return
        values = [(r.labels, r.value) for r in results if r.value is not None]
        with self._lock:
            self._values[rule.record] = values  # type: ignore[assignment]
            self._last[rule.record] = at_ns / 1e9

    def forget(self, changes: Callable[[str], str]) -> int:
        """Drop the groups a delete-by-query erased: those with a label value that ``changes``
        (its redaction) alters; they would otherwise stay, at 0, until they aged out. How many."""
        dropped = 0
        with self._lock:
            for record, values in self._values.items():
                kept = [(labels, value) for labels, value in values
                        if all(changes(str(v)) == str(v) for v in labels.values())]
                dropped += len(values) - len(kept)
                self._values[record] = kept
        return dropped

    def jobs(self) -> list[Job]:
        """One scheduler job per rule, on the rule's interval."""
        return [Job(f"record:{r.record}", r.rule().interval_ns, lambda at, r=r: self.record(r, at))
                for r in self.rules]

    def collect(self) -> Iterator[Metric]:
        """Every gauge of the latest evaluations (prometheus_client's collector protocol)."""
        return self.families(None)

    def families(self, allow: Callable[[dict[str, str]], bool] | None) -> Iterator[Metric]:
        """The gauges, keeping only series whose labels ``allow`` accepts (a scoped key's view)."""
        with self._lock:
            values = dict(self._values)
            last = dict(self._last)
            errors = dict(self._errors)
        for rule in self.rules:
            if rule.record not in values:
                continue
            group = [label_name(g) for g in rule.rule().group_labels()]
            names = list(dict.fromkeys([*group, *rule.labels]))
            family = GaugeMetricFamily(rule.record, rule.description or f"logharbor recording rule: "
                                       f"{rule.query} over {rule.window}", labels=names)
            for labels, value in values[rule.record]:
                merged = {**rule.labels, **{label_name(k): v for k, v in labels.items()}}
                if allow is None or allow(merged):
                    family.add_metric([merged.get(n, "") for n in names], value)
            yield family
        done = GaugeMetricFamily("logharbor_recording_last_evaluation_timestamp_seconds",
                                 "when each recording rule last evaluated", labels=["record"])
        failed = GaugeMetricFamily("logharbor_recording_errors", "failed evaluations per recording rule",
                                   labels=["record"])
        for rule in self.rules:
            if rule.record in last:
                done.add_metric([rule.record], last[rule.record])
            failed.add_metric([rule.record], errors.get(rule.record, 0))
        yield done
        yield failed

    def exposition(self, allow: Callable[[dict[str, str]], bool] | None = None) -> bytes:
        """The Prometheus text format of what was recorded (only ``allow``-ed series, if given)."""
        if allow is None:
            return generate_latest(self.registry)
        view = CollectorRegistry(auto_describe=False)
        view.register(_View(self, allow))
        return generate_latest(view)


class _View(Collector):
    """A filtered look at a recorder, for one scrape by a scoped key."""

    def __init__(self, recorder: Recorder, allow: Callable[[dict[str, str]], bool]) -> None:
        self.recorder = recorder
        self.allow = allow

    def collect(self) -> Iterator[Metric]:
        return self.recorder.families(self.allow)


def scope_allows(tenant: str | None, services: list[str] | None) -> Callable[[dict[str, str]], bool]:
    """Series a scoped key may see: those labelled with its tenant (and one of its services).

    A series without the label cannot be shown to be inside the scope, so it is left out.
    """
    def allow(labels: dict[str, str]) -> bool:
        if tenant is not None and labels.get("tenant") != tenant:
            return False
        return services is None or labels.get("service") in services

    return allow


def rules_path(data_dir: Path) -> Path:
    """Where the rules are read from: ``$LOGHARBOR_RECORDING_RULES`` or the data directory."""
    env = os.environ.get("LOGHARBOR_RECORDING_RULES")
    return Path(env) if env else data_dir / RULES_FILE


def start_recording(app_state: Any, runtime: Any) -> Recorder:
    """Load the rules and put them on the alert scheduler (``app_state.alerts`` must be running)."""
    path = rules_path(runtime.config.data_dir)
    rules = load_rules(path)
    alerts = app_state.alerts
    recorder = app_state.recorder = Recorder(rules, alerts.run_query, runtime.store.table)
    if rules:
        alerts.evaluator.jobs.extend(recorder.jobs())
        alerts.evaluator.rules_changed()
        log.info("recording rules: %d from %s", len(rules), path)
    return recorder
