"""Rule validation and the meaning of tier ages (no store needed)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from logharbor.server.features.retention.rules import RetentionPolicy, Rule

DAY = 86_400 * 10**9


@pytest.mark.parametrize(("spec", "word"), [
    ({"name": "x", "hot": "9d", "warm": "2d"}, "warm"),
    ({"name": "x", "hot": "9d", "delete": "2d"}, "delete"),
    ({"name": "x", "hot": "soon"}, "hot"),
    ({"name": "x", "hot": "0d"}, "hot"),
    ({"name": "x", "sample": {"after": "1d", "keep": 1.5}}, "keep"),
    ({"name": "bad name!"}, "name"),
    ({"name": "x", "match": {"pod": "a"}}, "pod"),
])
def test_bad_rules_name_their_key(spec: dict, word: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValidationError) as exc:
        Rule.model_validate(spec)
    assert word in str(exc.value)


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(ValidationError, match="unique"):
        RetentionPolicy.model_validate({"rules": [{"name": "a"}, {"name": "a"}]})


def test_tier_ages() -> None:
    def tiers(spec: dict, *days: float) -> list[str | None]:  # type: ignore[type-arg]
        plan = Rule.model_validate({"name": "r", **spec}).plan()
        return [plan.tier_at(int(d * DAY)) for d in days]

    assert tiers({}, 0, 10_000) == ["hot", "hot"]  # no ages: hot for good
    assert tiers({"hot": "7d"}, 6, 7) == ["hot", None]  # leaves its last tier: deleted
    assert tiers({"hot": "1d", "delete": "3d"}, 2, 3) == ["hot", None]  # stays until delete
    assert tiers({"hot": "7d", "cold": "30d", "delete": "never"}, 8, 10_000) == ["cold", "cold"]
    assert tiers({"warm": "30d"}, 0, 29, 30) == ["warm", "warm", None]  # no hot age: warm at once
    assert tiers({"hot": "1d", "warm": "2d", "cold": "3d"}, 0.5, 1.5, 2.5, 3) == ["hot", "warm", "cold", None]


def test_conditions_give_each_record_one_rule() -> None:
    policy = RetentionPolicy.model_validate({"rules": [
        {"name": "all"}, {"name": "alb", "match": {"source": "alb"}},
        {"name": "alb-err", "match": {"source": "alb", "level": ["error", "fatal"]}}]})
    conds = {rule.name: (sql, params) for rule, sql, params in policy.conditions()}
    assert list(conds) == ["alb-err", "alb", "all"]  # most specific first
    assert "NOT" not in conds["alb-err"][0] and conds["alb-err"][0].count("{") == 3
    assert conds["alb"][0].count("NOT") == 1 and conds["all"][0].count("NOT") == 2
    assert set(conds["alb-err"][1].values()) == {"alb", "ERROR", "FATAL"}  # levels upper-cased
    catch_all_first = RetentionPolicy.model_validate({"rules": [{"name": "all"}, {"name": "all2"}]})
    assert [sql for _, sql, _ in catch_all_first.conditions()][1] == "(0)"  # never reached
