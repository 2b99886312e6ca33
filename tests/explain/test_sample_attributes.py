"""Explain's sample reads each record's attributes as they were sent (``attributes`` text →
exactjson), not as an engine type would give them back: ``13.0`` is the float ``13.0`` (a number,
compared by rank, not the text "13"), a 70-bit integer stays whole, a null and ``{}`` name no
field, nested keys are dotted names, and of two spellings of one name the nested one counts (the
one a query for that name reads first), whatever order the keys were sent in."""

from __future__ import annotations

import time

from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.features.explain import passes
from logharbor.server.features.explain.sets import build_sets

from .conftest import load

BASE_NS = 1_793_620_800 * 10**9  # 2026-11-02T12:00:00Z: a range no other explain test loads
WINDOW_NS = 600 * 10**9
BIG = 2**70 + 1


def _records(order: str) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for i in range(20):
        nested_first = {"a": {"b": "nested"}, "a.b": "literal"}
        literal_first = {"a.b": "literal", "a": {"b": "nested"}}
        attributes = {"n": 13.0 if i % 2 else 7, "big": BIG + i, "gone": None, "empty": {},
                      "tags": ["x", 1], "err": {"type": "E1", "at": {"line": 3}},
                      **(nested_first if order == "nested" else literal_first)}
        at = BASE_NS + (WINDOW_NS if i % 2 else 0) + i * 10**9
        out.append({"timestamp": at, "service": f"explain-exact-{order}", "message": f"m {i}",
                    "attributes": attributes})
    return out


def _sample(store: EmbeddedStore, order: str) -> tuple[list[dict], list[dict]]:  # type: ignore[type-arg]
    sets = build_sets(f"service:explain-exact-{order}", focus=(BASE_NS + WINDOW_NS, BASE_NS + 2 * WINDOW_NS),
                      mode="previous", baseline=None, scope=None, now_ns=time.time_ns())
    totals = passes.totals(store, sets, {})
    assert (totals.focus, totals.baseline) == (10, 10)
    return passes.sample(store, sets, {}, totals)


def test_sampled_attribute_values_are_the_values_sent(explain_store: EmbeddedStore) -> None:
    for order in ("nested", "literal"):
        load(explain_store, _records(order), f"explain-exact-{order}")
        focus, baseline = _sample(explain_store, order)
        assert len(focus) == len(baseline) == 10
        for row in focus:  # the focus holds the odd records: n sent as 13.0
            assert type(row["n"]) is float and row["n"] == 13.0  # a float as sent (the JSON column gave 13)
            assert type(row["big"]) is int and row["big"] > 2**64  # whole, not a string or a rounded float
            assert row["err.type"] == "E1" and row["err.at.line"] == 3  # nested keys: dotted names
            assert row["a.b"] == "nested", order  # the spelling a query for a.b reads first
            assert "gone" not in row and "empty" not in row and "tags" not in row  # null, {}, arrays: no field
        assert sorted(row["big"] - BIG for row in focus + baseline) == list(range(20))
        assert {type(row["n"]) for row in baseline} == {int}  # 7 stays an int


def test_flatten_names_each_spelling_apart_in_any_order() -> None:
    """Each key list has its own name (a key with a dot in backticks, as /api/v1/fields names
    it), so no spelling hides another and a click filters on exactly that key."""
    for attributes in ({"a.b.c": 1, "a": {"b.c": 2, "b": {"c": 3}}, "a.b": {"c": 4}},
                       {"a": {"b": {"c": 3}, "b.c": 2}, "a.b": {"c": 4}, "a.b.c": 1}):
        out: dict[str, object] = {}
        passes.flatten_attributes(attributes, "", out)
        assert out == {"a.b.c": 3, "a.`b.c`": 2, "`a.b`.c": 4, "`a.b.c`": 1}
