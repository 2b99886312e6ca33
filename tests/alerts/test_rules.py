"""The rule model: the seed examples, both condition forms, and errors that say what is wrong."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from logharbor.server.features.alerts.evaluator import next_slot, step
from logharbor.server.features.alerts.rules import Condition, Rule, validation_message
from logharbor.server.features.alerts.silences import Matcher, matches

BASE = {"name": "r", "query": "level:ERROR", "condition": "count > 10", "window": "5m"}


def rule(**changes: object) -> Rule:
    return Rule.model_validate({**BASE, **changes})


def refusal(**changes: object) -> str:
    with pytest.raises(ValidationError) as info:
        rule(**changes)
    return validation_message(info.value)


def test_seed_examples_in_both_forms() -> None:
    short = rule(name="more than 10 ERROR records in the last 5 minutes")
    long = rule(condition={"type": "count", "op": ">", "threshold": 10})
    assert short.condition == long.condition and short.window_ns == 300 * 10**9
    burst = rule(name="error count > 5 in 1 minute", condition="count > 5", window="1m")
    assert burst.condition.holds(6) and not burst.condition.holds(5)
    assert burst.condition.text() == "count > 5"


@pytest.mark.parametrize(("text", "expected"), [
    ("count >= 3", Condition(type="count", op=">=", threshold=3)),
    ("ratio(status:>=500) > 0.05", Condition(type="ratio", op=">", threshold=0.05, numerator="status:>=500")),
    ("p99 <= 1e3", Condition(type="value", op="<=", threshold=1000, column="p99")),
    ("absent", Condition(type="absence")),
])
def test_condition_shorthand(text: str, expected: Condition) -> None:
    assert Condition.parse_text(text) == expected


@pytest.mark.parametrize(("changes", "message"), [
    ({"query": "level:("}, "query: expected a value after 'level:' at 7"),
    ({"query": "level:ERROR | stats count() by service"}, "a count, ratio or absence rule takes a filter only"),
    ({"condition": "count > -5"}, "a count threshold cannot be negative"),
    ({"condition": {"type": "count", "threshold": float("nan")}}, "threshold must be a finite number"),
    ({"condition": "ratio(x) > 1.5"}, "a ratio threshold is between 0 and 1"),
    ({"condition": {"type": "ratio", "threshold": 0.1}}, "a ratio condition needs 'numerator'"),
    ({"condition": "ratio(status:>=) > 0.1"}, "condition numerator:"),
    ({"condition": "p99 > 5"}, "a value condition needs a '| stats … [by …]' in the query"),
    ({"condition": "n > five"}, "is not '<count|ratio(filter)|column> <op> <number>'"),
    ({"window": "5x"}, "window: '5x' is not a duration"),
    ({"interval": "1s"}, "interval must be at least 10s"),
    ({"group_by": ["timestamp"]}, "group_by: cannot group by 'timestamp'"),
    ({"annotations": {"s": "{{service}}"}}, "unknown template name {{service}}"),
    ({"annotations": {"s": "{{labels.team}}"}}, "unknown template name {{labels.team}}"),
    ({"name": "a/b"}, "a rule name has no '/'"),
    ({"extra": 1}, "extra: Extra inputs are not permitted"),
])
def test_errors_name_the_field(changes: dict[str, object], message: str) -> None:
    assert message in refusal(**changes)


def test_templates_and_group_labels() -> None:
    r = rule(group_by=["service", "user_id"], labels={"team": "pay"},
             annotations={"summary": "{{service}}/{{user_id}}: {{value}} > {{threshold}} ({{labels.team}}, {{rule}})"})
    assert r.group_labels() == ["service", "user_id"]
    assert r.render({"service": "checkout", "user_id": "u-1"}, 12.0) == {
        "summary": "checkout/u-1: 12 > 10 (pay, r)"}
    value_rule = rule(query="* | stats p95(duration_ms) as p95 by service, path", condition="p95 > 200",
                      annotations={"s": "{{path}} {{value}}"})
    assert value_rule.group_labels() == ["service", "path"]
    assert value_rule.render({"service": "a", "path": "/x"}, 250.123456) == {"s": "/x 250.1"}


def test_state_machine_steps() -> None:
    r = rule(**{"for": "1m"})
    s = 10**9
    state, cols, note = step(None, True, 100 * s, r)
    assert (state, cols["active_since_ns"], note) == ("pending", 100 * s, None)
    prev = {"state": "pending", "active_since_ns": 100 * s}
    assert step(prev, True, 130 * s, r)[0] == "pending"
    state, cols, note = step(prev, True, 160 * s, r)
    assert (state, cols["fired_ns"], note) == ("firing", 160 * s, "firing")
    firing = {"state": "firing", "active_since_ns": 100 * s, "last_notified_ns": 160 * s}
    assert step(firing, True, 170 * s, r) == ("firing", {"active_since_ns": 100 * s}, None)
    assert step(firing, False, 180 * s, r) == ("resolved", {"resolved_ns": 180 * s}, "resolved")
    repeating = rule(repeat_interval="1h")
    assert step(firing, True, 160 * s + 3600 * s, repeating)[2] == "firing"


def test_slots_are_on_a_fixed_grid_spread_by_name() -> None:
    m = 60 * 10**9
    a = next_slot("rule a", m, 0)
    assert next_slot("rule a", m, a) == a + m and next_slot("rule a", m, a - 1) == a
    offsets = {next_slot(f"rule {i}", m, 0) % m for i in range(100)}
    assert len(offsets) > 30  # 100 one-minute rules do not all start on the same second


def test_silence_matchers() -> None:
    labels = {"alertname": "disk", "service": "web-1", "env": "prod"}
    assert matches([Matcher(name="service", value="web-.*", op="=~"), Matcher(name="env", value="prod")], labels)
    assert not matches([Matcher(name="env", value="prod", op="!=")], labels)
    assert matches([Matcher(name="service", value="db-.*", op="!~")], labels)
    assert not matches([Matcher(name="service", value="web", op="=~")], labels)  # whole value
    assert matches([Matcher(name="team", value="")], labels)  # a missing label is the empty string


def test_silence_regexes_are_re2() -> None:
    """As Alertmanager's: linear time on any value (Python's re backtracks for minutes on this one),
    and what RE2 cannot run (lookaround, backreferences) is refused when the silence is made."""
    labels = {"service": "a" * 5000 + "!"}
    assert not matches([Matcher(name="service", value="(a+)+$", op="=~")], labels)
    assert matches([Matcher(name="service", value="(a|aa)*b", op="!~")], labels)
    for pattern in ("(?<=a)b", r"(a)\1"):
        with pytest.raises(ValueError, match="bad regex"):
            Matcher(name="service", value=pattern, op="=~")
