"""Stored means unaltered, at the store: generated batches of records go into a real chDB store in
one insert each and come back, through the compiled records query, equal to the normalized
record (docs/record.md), keys in the order sent; through the warm tier and cold Parquet files too.
A store of the old layout (``attributes JSON``) is migrated at start: tests/store/test_attrmigrate.py.

The round trip through a real server and both stores is tests/faults/test_roundtrip.py; this file
is the fast, store-level check of the storage rules (store/attributes.py), with many examples.
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
from tests.record.values import BIG_INTS, ODD_FLOATS, ODD_STRINGS, attribute_sets, typed
from tests.retention.helpers import NOW, open_tiers

from logharbor.record import normalize, to_wire
from logharbor.server.engine.store.attributes import PROMOTED
from logharbor.server.engine.store.base import StoreError
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


def test_the_stored_text_is_the_encoders_in_the_order_sent(tmp_path: Path) -> None:
    """The ``attributes`` column holds the object's text byte for byte as the encoder wrote it
    (keys in the order sent, ``13.0``, ``-0.0``, nulls, ``{}``, big ints, ``%`` and dotted keys as
    they are), the promoted columns its text form, and a read gives back the same order."""
    store = EmbeddedStore(tmp_path / "store")
    store.open()
    try:
        attributes = {"z": 13.0, "a": None, "%2E": {}, "a.b": -0.0, "big": 2**70, "user_id": 12,
                      "duration_ms": 13.0, "logger": {"x": [True, 1]}, "é": "😀"}
        obj = stored_record(attributes, "text")
        line = encode_record(obj, received_ns=NOW)
        store.insert(line, dedup_token="text-1")
        row = store.query("SELECT attributes, attr_user_id, attr_duration_ms, attr_logger, attr_order_id "
                          "FROM logs", {})[0]
        sent = line[line.index(b'"attributes":') + len(b'"attributes":'):line.rindex(b"}")].decode()
        assert row["attributes"] == sent
        assert (row["attr_user_id"], row["attr_duration_ms"], row["attr_logger"], row["attr_order_id"]) == (
            "12", "13", '{"x":[true,1]}', None)
        wire = read_back(store, "*")[0]
        assert list(wire)[-len(attributes):] == list(attributes)  # the order sent
        # each promoted column is exactly its key's text form, whatever the value
        values = [*BIG_INTS, *ODD_FLOATS, *ODD_STRINGS, None, {}, [], [True, 1], {"a": {"b": None}}, True, 0]
        rows = [encode_record(stored_record({k: v for k in PROMOTED}, f"p{i}"), received_ns=NOW)
                for i, v in enumerate(values)]
        store.insert(b"\n".join(rows), dedup_token="text-2")
        same = " AND ".join(f"{column} <=> JSONExtract(attributes, '{key}', 'Nullable(String)')"
                            for key, column in PROMOTED.items())
        counted = store.query(f"SELECT count() AS n, countIf(NOT ({same})) AS bad FROM logs", {})[0]  # noqa: S608
        assert (int(counted["n"]), int(counted["bad"])) == (len(values) + 1, 0)
    finally:
        store.close()


def test_an_unknown_field_fails_the_insert_instead_of_vanishing(tmp_path: Path) -> None:
    """A field the table has no column for (a newer server on an older table) is an error that
    names it, and nothing of the batch is stored; the engine's default would drop the field."""
    store = EmbeddedStore(tmp_path / "store")
    store.open()
    try:
        good = encode_record(stored_record({"k": 1}, "good"), received_ns=NOW)
        bad = good[:-1] + b',"attr_new_field":"x"}'
        with pytest.raises(StoreError, match="attr_new_field"):
            store.insert(good + b"\n" + bad, dedup_token="unknown-1")
        assert store.query("SELECT count() AS n FROM logs", {})[0]["n"] in (0, "0")
    finally:
        store.close()


def test_a_table_without_a_column_the_encoder_writes_is_refused_at_start(tmp_path: Path) -> None:
    """Start names the missing column rather than failing every insert later."""
    store = EmbeddedStore(tmp_path / "store")
    store.open()
    store.execute("ALTER TABLE logs DROP COLUMN version")
    store.close()
    again = EmbeddedStore(tmp_path / "store")
    with pytest.raises(StoreError, match=r"lacks the column.*version"):
        again.open()
    again.close()


def test_values_survive_the_warm_and_cold_tiers(tmp_path: Path) -> None:
    """Rows copied to warm and exported to Parquet and read back keep every value: the text
    travels as it is."""
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


def _order(value: Any) -> Any:
    """The key order of every object in ``value`` (typed() leaves it out)."""
    if isinstance(value, dict):
        return [(k, _order(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_order(v) for v in value]
    return None


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
    and each comes back equal to its normalized form, types and all, keys in the order sent."""
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
        assert _order(record) == _order(expected[record["message"]]), record["message"]
