"""The ``Store`` contract, run against the embedded store and the ClickHouse store (through the
HTTP double, plain and with a cluster name): the same schema, the same compiled SQL, the same
answers. Anything that differs between the two engines must live in the store modules."""

from __future__ import annotations

# ruff: noqa: S608 - tests build SQL from the store's own quoted table name
import itertools
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from logharbor.record import normalize
from logharbor.server.engine.store.base import QueryCancelled, Store, StoreError
from logharbor.server.engine.store.clickhouse import ClickHouseStore, parse_clickhouse_url
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_row, row_to_wire
from logharbor.server.features.query import compile_query

from .conftest import CLUSTER, Double

T0 = 1_800_000_000_000_000_000
S = 1_000_000_000
_db = itertools.count()


_opened: list[EmbeddedStore] = []


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    store = EmbeddedStore(tmp_path_factory.mktemp("contract") / "store")
    store.open()
    yield store
    while _opened:
        _opened.pop().close()
    store.close()


STORES = ["embedded", "clickhouse", "clickhouse-cluster"]


def open_store(kind: str, embedded: EmbeddedStore, chdouble: Double) -> Iterator[Store]:
    """A fresh logs table: its own table name (embedded) or database (ClickHouse)."""
    n = next(_db)
    if kind == "embedded":
        yield embedded_table(embedded, f"logs_{n}")
        return
    cluster = CLUSTER if kind == "clickhouse-cluster" else None
    s = ClickHouseStore(chdouble.url(f"contract_{n}", cluster))
    s.open()
    yield s
    s.close()


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, embedded: EmbeddedStore, chdouble: Double) -> Iterator[Store]:
    """A fresh logs table per test, for the tests that write."""
    yield from open_store(request.param, embedded, chdouble)


@pytest.fixture(scope="module", params=STORES)
def loaded(request: pytest.FixtureRequest, embedded: EmbeddedStore, chdouble: Double) -> Iterator[Store]:
    """A fresh logs table per store with the records loaded once, for the tests that only read."""
    for s in open_store(request.param, embedded, chdouble):
        load(s)
        yield s


def embedded_table(embedded: EmbeddedStore, name: str) -> EmbeddedStore:
    """Another logs table in the module's chDB data path (one path per process; the same path
    may be opened again), closed with the module."""
    s = EmbeddedStore(embedded.path, table=name)
    s.open()
    _opened.append(s)
    return s


def records() -> list[dict[str, Any]]:
    out = []
    for i in range(60):
        out.append(normalize({
            "timestamp": T0 + i * S, "service": ["checkout", "search", "auth"][i % 3],
            "level": ["INFO", "ERROR", "WARN"][i % 3 if i % 5 else 1],
            "message": f"request {i} {'payment declined' if i % 7 == 0 else 'ok'}",
            "trace_id": f"{i % 10:032x}", "http": {"status": 200 + (i % 4) * 100, "path": f"/api/{i % 4}",
                                                  "duration_ms": float(i)},
            "user_id": f"u-{i % 6}", "attempt": i % 3}, received_ns=T0 + 100 * S))
    return out


def load(store: Store, token: str = "wal-1-1") -> int:  # noqa: S107 - a WAL range, not a secret
    rows = b"\n".join(encode_row(r) for r in records())
    return store.insert(rows, dedup_token=token)


QUERIES = [
    "*",
    "service:checkout AND level:ERROR",
    '"payment declined"',
    "status:>=400 AND NOT service:auth",
    "trace_id:00000000000000000000000000000003",
    "user_id:u-2",
    "attempt:>1",
    "duration_ms:[10 TO 20]",
    "level:(ERROR OR WARN) | stats count() as n, p50(duration_ms) as p by service | sort service",
    "* | timechart span=10s count() by level",
    "* | top 3 user_id",
    "path:/api/1* | fields timestamp, service, message | sort timestamp",
]


def run(store: Store, q: str) -> list[dict[str, Any]]:
    compiled = compile_query(q, table=store.table, time_from_ns=T0 - S, time_to_ns=T0 + 3600 * S, limit=1000,
                             max_limit=10_000)
    rows = store.query(compiled.sql, compiled.params)
    return [row_to_wire(r) if "observed_timestamp" in r else r for r in rows]


@pytest.fixture(scope="module")
def reference(embedded: EmbeddedStore) -> dict[str, list[dict[str, Any]]]:
    """The embedded store's answers, the yardstick for every store."""
    s = embedded_table(embedded, "reference")
    load(s)
    return {q: run(s, q) for q in QUERIES}


def _canon(rows: list[dict[str, Any]]) -> list[bytes]:
    return sorted(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in rows)


@pytest.mark.parametrize("q", QUERIES)
def test_compiled_queries_answer_the_same(loaded: Store, reference: dict[str, list[dict[str, Any]]], q: str) -> None:
    got = run(loaded, q)
    assert got, f"no rows for {q!r}"
    assert _canon(got) == _canon(reference[q])


def test_replayed_insert_is_not_stored_twice(store: Store) -> None:
    load(store, "wal-7-9")
    load(store, "wal-7-9")
    assert store.query(f"SELECT count() AS n FROM {store.table}", {})[0]["n"] in (60, "60")
    load(store, "wal-10-12")
    assert int(store.query(f"SELECT count() AS n FROM {store.table}", {})[0]["n"]) == 120


def test_bad_token_is_refused(store: Store) -> None:
    with pytest.raises(StoreError):
        store.insert(b"{}", dedup_token="x'; DROP TABLE logs")


def test_stream_yields_jsoneachrow(store: Store) -> None:
    load(store)
    chunks = list(store.stream(f"SELECT message FROM {store.table} WHERE level = {{l:String}} ORDER BY timestamp",
                               {"l": "ERROR"}))
    lines = [orjson.loads(line) for chunk in chunks for line in chunk.splitlines() if line]
    assert lines and all(line["message"].startswith("request ") for line in lines)
    assert len(lines) == sum(1 for r in records() if r["level"] == "ERROR")


def test_stats_count_rows(store: Store) -> None:
    load(store)
    assert store.stats().rows == 60


def test_over_budget_query_is_cancelled(store: Store) -> None:
    with pytest.raises(QueryCancelled):
        store.query("SELECT count() FROM numbers(100000000000) WHERE sipHash64(number) = 1", {},
                    settings={"max_execution_time": 0.2})


def test_errors_are_store_errors(store: Store) -> None:
    with pytest.raises(StoreError) as info:
        store.query("SELECT nope FROM {t:Identifier}", {"t": "missing_table"})
    assert not isinstance(info.value, QueryCancelled)


def test_cluster_ddl_is_replicated_and_distributed() -> None:
    s = ClickHouseStore("clickhouse://u:p@ch:8123/logsdb?cluster=prod")
    statements = s.ddl()
    local, observed = statements[:2]
    dist = next(x for x in statements if "ENGINE = Distributed" in x and "`logs`" in x)
    # patterns (#15): the column on both tables, a replicated patterns table fed on each shard
    assert sum("ADD COLUMN IF NOT EXISTS pattern_id" in x for x in statements) == 2
    assert any("ReplicatedAggregatingMergeTree(" in x and "`patterns_local` ON CLUSTER `prod`" in x
               for x in statements)
    assert any("MATERIALIZED VIEW IF NOT EXISTS `patterns_local_mv` ON CLUSTER `prod` TO `patterns_local`" in x
               and "FROM `logs_local`" in x for x in statements)
    assert any(x.startswith("CREATE TABLE IF NOT EXISTS `patterns` ON CLUSTER `prod` AS `patterns_local` ENGINE = "
                            "Distributed(") for x in statements)
    assert observed.startswith("ALTER TABLE `logs_local` ON CLUSTER `prod` ADD INDEX IF NOT EXISTS idx_observed")
    assert "ON CLUSTER `prod`" in local and "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}'" in local
    assert local.startswith("CREATE TABLE IF NOT EXISTS `logs_local` ON CLUSTER")
    assert "ENGINE = Distributed('prod', 'logsdb', 'logs_local', cityHash64(tenant, service, trace_id))" in dist
    assert ClickHouseStore("clickhouse://ch/logsdb").ddl()[0].count("ENGINE = MergeTree") == 1


def test_url_parsing() -> None:
    u = parse_clickhouse_url("clickhouses://bob:p%40ss@ch.example:9443/logs?cluster=c1&compress=none")
    assert (u.host, u.port, u.user, u.password, u.database, u.cluster, u.secure, u.compress) == (
        "ch.example", 9443, "bob", "p@ss", "logs", "c1", True, False)
    assert "p@ss" not in u.redacted()
    with pytest.raises(StoreError):
        parse_clickhouse_url("clickhouse://ch/logs?clutser=x")
    with pytest.raises(StoreError):
        parse_clickhouse_url("http://ch/logs")


def test_wrong_password_is_a_store_error(chdouble: Double) -> None:
    with pytest.raises(StoreError, match=r"516|Authentication"):
        ClickHouseStore(chdouble.url("x").replace("s3cret", "wrong")).open()


def test_string_parameters_mean_the_same_on_both(store: Store) -> None:
    """Callers pass plain values; each store writes them in the engine's escaped form, so a
    backslash, newline or quote in a user's value arrives unchanged on both engines."""
    value = "a\\nb\\\\c\ttab\nline 'q' \"dq\" /timeout \\d+ms \\b/"
    rows = store.query("SELECT {s:String} AS s, {a:Array(String)} AS a", {"s": value, "a": [value, "x"]})
    assert rows == [{"s": value, "a": [value, "x"]}]


def test_query_with_stats_matches_query(store: Store) -> None:
    load(store)
    compiled = compile_query("service:checkout | sort timestamp", table=store.table, time_from_ns=T0 - S,
                             time_to_ns=T0 + 3600 * S, limit=1000, max_limit=10_000)
    rows, stats = store.query_with_stats(compiled.sql, compiled.params)  # type: ignore[attr-defined]
    assert rows == store.query(compiled.sql, compiled.params) and len(rows) == 20
    assert int(stats["rows_read"]) >= 20 and int(stats["bytes_read"]) > 0


def test_the_cluster_store_writes_through_a_distributed_table(chdouble: Double) -> None:
    store = ClickHouseStore(chdouble.url(f"contract_dist_{next(_db)}", CLUSTER))
    store.open()
    try:
        engines = {r["name"]: r["engine"] for r in store.query(
            "SELECT name, engine FROM system.tables WHERE database = currentDatabase()", {})}
        assert engines == {"logs": "Distributed", "logs_local": "MergeTree",  # Replicated on a real cluster
                           "patterns": "Distributed", "patterns_local": "AggregatingMergeTree",
                           "patterns_local_mv": "MaterializedView"}
        load(store, "wal-3-4")
        load(store, "wal-3-4")  # replayed through the Distributed table: still once
        assert int(store.query("SELECT count() AS n FROM logs_local", {})[0]["n"]) == 60
        # the view on the shard counted each record once
        assert int(store.query("SELECT sum(count) AS n FROM patterns_local", {})[0]["n"]) == 60
    finally:
        store.close()
