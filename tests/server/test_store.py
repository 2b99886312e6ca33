"""The embedded store's contract details that bit us: parameter escaping, stats, and readers
that must not carry a failed query's output into the next answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from logharbor.server.engine.store.base import QueryCancelled, StoreError
from logharbor.server.engine.store.embedded import EmbeddedStore

ROW = (b'{"timestamp":"1700000000.1","observed_timestamp":"1700000000.2","level":"INFO",'
       b'"severity_number":9,"service":"a","message":"one","attributes":{"n":1}}')


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = EmbeddedStore(tmp_path / "store", readers=1)
    s.open()
    s.insert(ROW, dedup_token="t1")
    yield s
    s.close()


def test_a_failed_query_leaves_nothing_behind_for_the_next(store: EmbeddedStore) -> None:
    """Regression: a cancelled query's partial output came out in front of the next answer."""
    with pytest.raises(QueryCancelled):
        store.query("SELECT number FROM numbers(1000000000) WHERE sleepEachRow(0.001) = 0 "
                    "SETTINGS max_execution_time = 0.2, max_block_size = 1, timeout_overflow_mode = 'throw'",
                    {})
    with pytest.raises(StoreError):
        store.query("SELECT throwIf(1)", {})
    assert store.query("SELECT message FROM logs", {}) == [{"message": "one"}]
    rows, stats = store.query_with_stats("SELECT message FROM logs", {})
    assert rows == [{"message": "one"}] and stats["rows_read"] >= 1


def test_parameters_reach_the_engine_unchanged(store: EmbeddedStore) -> None:
    hostile = "\\b\\t \t\n \\x41 ' \" \\"
    rows = store.query("SELECT {s:String} AS s, {a:Array(String)} AS a", {"s": hostile, "a": [hostile, "x"]})
    assert rows == [{"s": hostile, "a": [hostile, "x"]}]


def test_a_replayed_batch_is_stored_once(store: EmbeddedStore) -> None:
    store.insert(ROW, dedup_token="t1")
    assert store.query("SELECT toUInt32(count()) AS n FROM logs", {}) == [{"n": 1}]


def test_insert_counts_back_what_its_token_stored(store: EmbeddedStore) -> None:
    """``insert`` returns the rows found under its token afterwards (not the engine's report): a
    retry of a batch that was stored (its answer lost) stores nothing twice and still counts the
    rows the first attempt stored, so the batcher can release its WAL range."""
    rows = b"\n".join(ROW.replace(b'"one"', b'"r%d"' % i) for i in range(50))
    assert store.insert(rows, dedup_token="wal-2-4") == 50
    assert store.insert(rows, dedup_token="wal-2-4") == 50
    assert store.query("SELECT toUInt32(count()) AS n FROM logs", {}) == [{"n": 51}]
    assert store.query("SELECT toUInt32(count()) AS n FROM logs WHERE ingest_batch = 't1'", {}) == [{"n": 1}]


def test_rows_are_marked_with_their_batch_without_being_decoded() -> None:
    from logharbor.server.engine.store.batches import mark_rows, row_count

    rows = b'{"a":1}\n{"b":"x\\n{"}\n{}'
    marked = mark_rows(rows, "wal-1-2")
    assert marked == b'{"ingest_batch":"wal-1-2","a":1}\n{"ingest_batch":"wal-1-2","b":"x\\n{"}\n' \
                     b'{"ingest_batch":"wal-1-2"}'
    assert row_count(rows) == 3 and row_count(b"") == 0
    with pytest.raises(ValueError):
        mark_rows(rows, "x'; DROP TABLE logs")
