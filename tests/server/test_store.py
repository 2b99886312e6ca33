"""The embedded store's contract details that bit us: parameter escaping, stats, and readers
that must not carry a failed query's output into the next answer."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


_ROW_PIECES = ['{"a":1}', "{}", '{"b":"x\\n{"}', "", " ", '{"c":"}"}', "{}x", '{"d":[{}]}']


@given(st.lists(st.sampled_from(_ROW_PIECES), max_size=8), st.booleans())
@settings(max_examples=200, deadline=None)
def test_marking_fast_path_is_the_line_by_line_marking(pieces: list[str], trailing: bool) -> None:
    """The fast path (split at row starts) gives the bytes and the count of the plain per-line
    marking on every mix of rows, blank lines and empty objects; the server trusts the count to
    verify what the store holds."""
    from logharbor.server.engine.store.batches import mark_rows, mark_rows_counted, row_count

    rows = ("\n".join(pieces) + ("\n" if trailing and pieces else "")).encode()
    prefix = b'{"ingest_batch":"wal-1-2",'
    lines = [line.strip() for line in rows.split(b"\n") if line.strip()]
    if any(line[:1] != b"{" for line in lines):
        with pytest.raises(ValueError):
            mark_rows_counted(rows, "wal-1-2")
        return
    expected = b"\n".join(prefix[:-1] + b"}" if line == b"{}" else prefix + line[1:].lstrip()
                          for line in lines)
    marked, count = mark_rows_counted(rows, "wal-1-2")
    assert marked == expected == mark_rows(rows, "wal-1-2")
    assert count == row_count(marked) == len(lines)
