"""Searches find the values as sent (issue #20): date-like strings by their text, integers of any
size by their digits, a dotted name under every spelling, numbers compared as numbers, and stats
grouped by exact values; on a real chDB store through the compiled query language."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_record, row_to_wire
from logharbor.server.features.query import compile_query
from logharbor.server.features.query.compiler import exact_fields

NOW = 1_780_272_000 * 10**9

RECORDS: list[dict[str, Any]] = [
    {"message": "alb", "request_creation_time": "2018-07-02T22:22:48.364000Z", "n": 1},
    {"message": "offset", "when": "2026-12-06T10:00:00+05:30", "n": 2},
    {"message": "syslog", "ISODATE": "2026-12-06T10:00:00.123+01:00", "asctime": "2026-12-06 10:00:00,123"},
    {"message": "big", "big": 2**64 + 1, "neg": -(2**63) - 1, "n": 18446744073709551615},
    {"message": "literal", "a.b": 1, "x.y.z": "lit"},
    {"message": "nested", "a": {"b": 1}, "x": {"y": {"z": "deep"}}},
    {"message": "half", "x.y": {"z": "half"}, "a": {"b": 2}},
    {"message": "other-half", "x": {"y.z": "other"}},
    {"message": "float", "a.b": 13.0, "n": 2.5},
    {"message": "null", "a": {"b": None}, "e": {}},
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path_factory.mktemp("search") / "store")
    s.open()
    rows = [encode_record({"timestamp": NOW + i, "service": "s", **r}, received_ns=NOW) for i, r in enumerate(RECORDS)]
    s.insert(b"\n".join(rows), dedup_token="search-1")
    yield s
    s.close()


def run(store: EmbeddedStore, q: str) -> list[dict[str, Any]]:
    compiled = compile_query(q, table=store.table, time_from_ns=None, time_to_ns=None, limit=100, max_limit=100)
    rows = store.query(compiled.sql, compiled.params)
    if compiled.kind == "records":
        return [row_to_wire(r) for r in rows]
    return [exact_fields(compiled, r) for r in rows]  # what the query route does


def found(store: EmbeddedStore, q: str) -> list[str]:
    return sorted(r["message"] for r in run(store, q))


@pytest.mark.parametrize(("query", "messages"), [
    ('request_creation_time:"2018-07-02T22:22:48.364000Z"', ["alb"]),
    ('when:"2026-12-06T10:00:00+05:30"', ["offset"]),
    ('ISODATE:"2026-12-06T10:00:00.123+01:00"', ["syslog"]),
    ('asctime:"2026-12-06 10:00:00,123"', ["syslog"]),
    ("request_creation_time:2018-07-02*", ["alb"]),
])
def test_date_like_strings_are_found_as_sent(store: EmbeddedStore, query: str, messages: list[str]) -> None:
    assert found(store, query) == messages


def test_integers_of_any_size_are_found_by_their_digits(store: EmbeddedStore) -> None:
    assert found(store, "big:18446744073709551617") == ["big"]
    assert found(store, "neg:-9223372036854775809") == ["big"]
    assert found(store, "n:18446744073709551615") == ["big"]
    assert found(store, "big:>1e19") == ["big"]  # compared as a number too
    record = run(store, "message:big")[0]
    assert record["big"] == 2**64 + 1 and record["neg"] == -(2**63) - 1 and record["n"] == 2**64 - 1


def test_a_dotted_name_matches_every_spelling(store: EmbeddedStore) -> None:
    assert found(store, "a.b:1") == ["literal", "nested"]
    assert found(store, "a.b:13") == ["float"]  # 13.0 is the number 13
    assert found(store, "a.b:>1") == ["float", "half"]
    assert found(store, "x.y.z:*") == ["half", "literal", "nested", "other-half"]
    assert found(store, "x.y.z:lit OR x.y.z:deep OR x.y.z:half OR x.y.z:other") == [
        "half", "literal", "nested", "other-half"]
    assert found(store, "NOT a.b:1 AND _exists_:a.b") == ["float", "half"]
    assert found(store, "_exists_:x.y") == ["half", "literal", "nested", "other-half"]
    assert found(store, "_exists_:e") == ["null"]  # {} is a stored value now (test_attribute_semantics)


def test_numbers_compare_as_numbers(store: EmbeddedStore) -> None:
    assert found(store, "n:>1") == ["big", "float", "offset"]
    assert found(store, "n:[1 TO 2.5]") == ["alb", "float", "offset"]


def test_stats_group_by_exact_values(store: EmbeddedStore) -> None:
    rows = run(store, "_exists_:a.b | stats count() as c by a.b | sort a.b")
    assert [(r["a.b"], r["c"]) for r in rows] == [("1", 2), ("13", 1), ("2", 1)]
    rows = run(store, "_exists_:request_creation_time OR _exists_:when | stats count() as c by request_creation_time")
    assert {r["request_creation_time"] for r in rows} == {"2018-07-02T22:22:48.364000Z", ""}
    rows = run(store, "message:big | stats count() as c by big")
    assert rows == [{"big": "18446744073709551617", "c": 1}]


def test_fields_shows_attributes_as_stored(store: EmbeddedStore) -> None:
    """``| fields`` of an attribute gives the stored value, not the JSON column's rendering of it:
    13.0 stays a float, an integer beyond 64 bits an integer, null and {} themselves, an object
    the object (the engine's path value of an object is NULL)."""
    assert run(store, "message:float | fields message, a.b, n") == [{"message": "float", "a.b": 13.0, "n": 2.5}]
    (row,) = run(store, "message:big | fields big, neg, n")
    assert row == {"big": 2**64 + 1, "neg": -(2**63) - 1, "n": 2**64 - 1}
    assert run(store, "message:null | fields a, a.b, e") == [{"a": {"b": None}, "a.b": None, "e": {}}]
    assert run(store, "x.y.z:half | fields x.y, x.y.z") == [{"x.y": {"z": "half"}, "x.y.z": "half"}]
    # a pipe after the projection keeps it; an aggregate after it reads the engine's values
    assert run(store, "_exists_:a.b | fields message, a.b | where a.b:13") == [{"message": "float", "a.b": 13.0}]
    assert run(store, "message:float | fields a.b | stats count() by a.b") == [{"a.b": "13", "count()": 1}]
