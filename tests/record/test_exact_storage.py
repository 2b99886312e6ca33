"""Stored means unaltered, at the store: generated batches of records go into a real chDB store in
one insert each and come back, through the compiled records query, equal to the normalized
record (docs/record.md); through the warm tier and cold Parquet files too; and a store made before
``attributes_exact`` existed is migrated in place, its old rows and old cold files still read.

The round trip through a real server and both stores is tests/faults/test_roundtrip.py; this file
is the fast, store-level check of the encoding rules (store/attributes.py), with many examples.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import examples
from tests.record.values import attribute_sets, typed
from tests.retention.helpers import NOW, open_tiers

from logharbor.record import normalize, to_wire
from logharbor.server.engine.store.attributes import split
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_record, row_to_wire
from logharbor.server.features.query import compile_query

FULL = os.environ.get("LOGHARBOR_FULL_TESTS") == "1"
_batches = itertools.count()

def stored_record(attributes: dict[str, Any], message: str) -> dict[str, Any]:
    """A record of ``attributes`` (canonical names moved aside, so the record keeps all of them)."""
    obj: dict[str, Any] = {"timestamp": NOW, "service": "exact", "message": message}
    for key, value in attributes.items():
        obj[key if key not in obj else f"x_{key}"] = value
    return obj


# -- reading back -------------------------------------------------------------------------------


def read_back(store: EmbeddedStore, query: str, limit: int = 1000) -> list[dict[str, Any]]:
    compiled = compile_query(query, table=store.table, time_from_ns=None, time_to_ns=None, limit=limit,
                             max_limit=limit)
    return [row_to_wire(row) for row in store.query(compiled.sql, compiled.params)]


def expected_wire(obj: dict[str, Any]) -> dict[str, Any]:
    wire = to_wire(normalize(obj, received_ns=NOW))
    wire.pop("observed_timestamp", None)
    return wire


def test_the_common_record_needs_no_exact_copy() -> None:
    """Strings, ints and bools (the usual record) are exact in the JSON column alone: nothing is
    stored twice; an integral float, a null or a `%` key is what needs the copy, and only it."""
    assert split({"user_id": "u-1", "attempt": 3, "ok": True, "d": "2018-07-02T22:22:48Z", "a.b": 1}) == (
        {"user_id": "u-1", "attempt": 3, "ok": True, "d": "2018-07-02T22:22:48Z", "a.b": 1}, {})
    assert split({"ms": 13.0, "rate": 0.5, "n": None, "u": "x"})[1] == {"ms": 13.0, "n": None}
    column, patch = split({"x%2Ey": 2, "x.y": 1, "o": {"%": 1}})
    assert column == {"x%252Ey": 2, "x.y": 1, "o": {"%25": 1}} and patch == {"x%2Ey": 2, "o": {"%": 1}}


def test_values_survive_the_warm_and_cold_tiers(tmp_path: Path) -> None:
    """Rows copied to warm (JSON to JSON) and exported to Parquet and read back (JSON as text, cast
    again) keep every value: the exact copy travels beside the JSON column."""
    store, tiers, _ = open_tiers(tmp_path)
    try:
        objs = [stored_record({"when": "2018-07-02T22:22:48.364000Z", "a.b": 1, "a": {"b": 2}, "": 3, ".x": 4,
                               "%2E": 5, "n": None, "e": {}, "f": 13.0, "big": 2**64 + 1, "arr": [True, 1],
                               "neg": -(2**63) - 1, "u": "😀"}, f"t{i}") for i in range(3)]
        store.insert(b"\n".join(encode_record(o, received_ns=NOW) for o in objs), dedup_token="tiers-1")
        tiers.copy_to_warm("m1", "hot", "message = 't1'", {})
        tiers.copy_to_cold("2026-06-01/c1.parquet", "hot", "message = 't2'", {})
        tiers.remove_copied("hot", [("warm", "m1", None, None), ("cold", "", "2026-06-01/c1.parquet", None)])
        tiers.refresh_view()
        records = read_back(store, "service:exact")
        got = {r["message"]: r for r in records}
        assert sorted(r["message"] for r in records) == ["t0", "t1", "t2"]  # moved, not copied twice
        for obj in objs:
            record = got[obj["message"]]
            record.pop("observed_timestamp", None)
            assert typed(record) == typed(expected_wire(obj)), obj["message"]
    finally:
        store.close()


def test_an_old_store_is_migrated_in_place(tmp_path: Path) -> None:
    """A store from before ``attributes_exact`` (hot, warm and a cold file without the column)
    opens with the column added; its old rows read as before, new rows are exact in every tier."""
    store, tiers, _ = open_tiers(tmp_path)
    for table in (tiers.hot, tiers.warm):
        store.execute(f"ALTER TABLE {table} DROP COLUMN attributes_exact")
    tiers.open()  # the view and the cold files' columns as an old server had them
    old = [stored_record({"user_id": f"u-{i}", "attempt": i}, f"old{i}") for i in range(3)]
    rows = [encode_record(o, received_ns=NOW) for o in old]
    store.insert(b"\n".join(rows), dedup_token="old-1")
    tiers.copy_to_warm("m-old", "hot", "message = 'old1'", {})
    tiers.copy_to_cold("2026-06-01/old.parquet", "hot", "message = 'old2'", {})
    tiers.remove_copied("hot", [("warm", "m-old", None, None), ("cold", "", "2026-06-01/old.parquet", None)])
    store.close()

    store, tiers, _ = open_tiers(tmp_path)  # the new code: migrations on open
    try:
        columns = {r["name"] for r in store.query(
            "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {t:String}",
            {"t": store.table_name})}
        assert "attributes_exact" in columns
        new = [stored_record({"n": None, "f": 13.0, "big": 2**64 + 1, "a.b": 1}, f"new{i}") for i in range(3)]
        store.insert(b"\n".join(encode_record(o, received_ns=NOW) for o in new), dedup_token="new-1")
        tiers.copy_to_warm("m-new", "hot", "message = 'new1'", {})
        tiers.copy_to_cold("2026-06-01/new.parquet", "hot", "message = 'new2'", {})
        tiers.remove_copied("hot", [("warm", "m-new", None, None), ("cold", "", "2026-06-01/new.parquet", None)])
        tiers.refresh_view()
        records = read_back(store, "service:exact")
        got = {r["message"]: r for r in records}
        assert sorted(r["message"] for r in records) == ["new0", "new1", "new2", "old0", "old1", "old2"]
        for obj in old + new:
            record = got[obj["message"]]
            record.pop("observed_timestamp", None)
            assert typed(record) == typed(expected_wire(obj)), obj["message"]
        assert [r["message"] for r in read_back(store, "a.b:1 | sort message")] == ["new0", "new1", "new2"]
    finally:
        store.close()


# -- many batches (last: chDB serves one data path per process, the tier tests above use others)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(tmp_path_factory.mktemp("exact") / "store")
    s.open()
    yield s
    s.close()


@settings(max_examples=600 if FULL else examples(60), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(attribute_sets, min_size=1, max_size=40))
def test_a_batch_of_any_records_is_stored_whole_and_read_back_unaltered(store: EmbeddedStore,
                                                                        batch: list[dict[str, Any]]) -> None:
    """One insert per batch, as the batcher does: no record can fail the others (poison batch),
    and each comes back equal to its normalized form, types and all (key order aside)."""
    n = next(_batches)
    store.execute(f"TRUNCATE TABLE {store.table}")  # one table, a few parts: each batch alone
    rows, expected = [], {}
    for i, attributes in enumerate(batch):
        obj = stored_record(attributes, f"b{n}r{i}")
        rows.append(encode_record(obj, received_ns=NOW))
        expected[obj["message"]] = expected_wire(obj)
    store.insert(b"\n".join(rows), dedup_token=f"exact-{n}")
    got = read_back(store, "*")
    assert sorted(r["message"] for r in got) == sorted(expected)
    for record in got:
        record.pop("observed_timestamp", None)
        assert typed(record) == typed(expected[record["message"]]), record["message"]
