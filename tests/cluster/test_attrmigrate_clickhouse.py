"""The ClickHouse store migrates an old-layout logs table (``attributes JSON`` + patch) at start,
as the embedded store does (store/attrmigrate.py), through the HTTP double; on a cluster it
refuses to start instead, saying what to do (a cluster's rewrite is not done at start)."""

from __future__ import annotations

# ruff: noqa: S608 - tests build SQL from quoted names
import itertools
from typing import Any

import clickhouse_connect
import pytest
from tests.record.values import typed
from tests.retention.helpers import NOW
from tests.store.old_attributes import ENGINE_SETTINGS as OLD_SETTINGS
from tests.store.oldlayout import OLD_SCHEMA, old_row
from tests.store.test_attrmigrate import corpus, expected

from logharbor.server.engine.store.base import StoreError
from logharbor.server.engine.store.batches import mark_rows
from logharbor.server.engine.store.clickhouse import ClickHouseStore
from logharbor.server.engine.store.patterns import patterns_ddl
from logharbor.server.engine.store.rows import encode_record, row_to_wire

from .conftest import CLUSTER, PASSWORD, USER, Double

_db = itertools.count()


def old_database(double: Double, objs: list[dict[str, Any]]) -> str:
    """A database holding ``logs`` as the old release made it on one ClickHouse server."""
    name = f"attrmig_{next(_db)}"
    client = clickhouse_connect.get_client(host="127.0.0.1", port=double.port, username=USER, password=PASSWORD,
                                           settings=dict(OLD_SETTINGS))
    try:
        client.command(f"CREATE DATABASE {name}")
        body = "\n".join(line for line in OLD_SCHEMA.splitlines() if not line.lstrip().startswith("--"))
        client.command(body.replace("{table}", f"{name}.logs").replace("{engine}", "MergeTree"))
        for statement in patterns_ddl("logs", "patterns"):
            client.command(statement.replace("`logs`", f"{name}.logs").replace("`patterns`", f"{name}.patterns")
                           .replace("`patterns_mv`", f"{name}.patterns_mv"))
        if objs:
            rows = mark_rows(b"\n".join(old_row(o, NOW) for o in objs), "old-1")
            client.raw_insert(f"{name}.logs", None, rows, fmt="JSONEachRow")
    finally:
        client.close()
    return name


def test_a_clickhouse_table_of_the_old_layout_is_rewritten_at_start(chdouble: Double) -> None:
    objs = corpus()
    database = old_database(chdouble, objs)
    store = ClickHouseStore(chdouble.url(database))
    store.open()
    try:
        kind = store.query("SELECT type FROM system.columns WHERE database = {d:String} AND table = 'logs' "
                           "AND name = 'attributes'", {"d": database})
        assert kind == [{"type": "String"}]
        got = {}
        for row in store.query(f"SELECT * FROM {store.table}", {}):
            wire = row_to_wire(row)
            wire.pop("observed_timestamp", None)
            got[wire["message"]] = wire
        assert sorted(got) == sorted(o["message"] for o in objs)
        for obj in objs:
            assert typed(got[obj["message"]]) == typed(expected(obj)), obj
        wal = [{**o, "message": "wal-" + o["message"]} for o in objs]  # an old server's WAL, replayed
        assert store.insert(b"\n".join(old_row(o, NOW) for o in wal), dedup_token="old-wal-1") == len(wal)
        for row in store.query(f"SELECT * FROM {store.table} WHERE startsWith(message, 'wal-')", {}):
            wire = row_to_wire(row)
            wire.pop("observed_timestamp", None)
            obj = next(o for o in wal if o["message"] == wire["message"])
            assert typed(wire) == typed(expected(obj)), obj
        new = {"timestamp": NOW, "service": "mig", "message": "new", "z": 13.0, "a": None}
        assert store.insert(encode_record(new, received_ns=NOW), dedup_token="new-1") == 1
        text = store.query("SELECT attributes FROM logs WHERE message = 'new'", {})[0]["attributes"]
        assert text == '{"z":13.0,"a":null}'
        views = store.query("SELECT name FROM system.tables WHERE database = {d:String} AND name = 'patterns_mv'",
                            {"d": database})
        assert views, "the patterns view was made again after the swap"
    finally:
        store.close()


def test_a_cluster_table_of_the_old_layout_is_refused_with_what_to_do(chdouble: Double) -> None:
    database = old_database(chdouble, corpus()[:3])
    client = clickhouse_connect.get_client(host="127.0.0.1", port=chdouble.port, username=USER, password=PASSWORD)
    try:  # the cluster store's rows live in <table>_local
        client.command(f"RENAME TABLE {database}.logs TO {database}.logs_local")
        client.command(f"DROP VIEW {database}.patterns_mv")
    finally:
        client.close()
    store = ClickHouseStore(chdouble.url(database, CLUSTER))
    with pytest.raises(StoreError, match="logharbor migrate"):
        store.open()
    store.close()


def test_an_old_cold_file_with_a_row_above_the_field_cap_is_rewritten(chdouble: Double, tmp_path) -> None:
    """An old cold file whose patched row is larger than a ClickHouse server takes in one query
    parameter (``http_max_field_value_size``, 128 KiB, which the double enforces): the rewrite
    sends no row as a parameter (staging table, rows in the request body), so the file is
    rewritten with every value exact, the big one included."""
    from logharbor.server.engine.store.coldstore import LocalCold
    from logharbor.server.engine.store.tiers import Tiers

    from .chdouble import MAX_FIELD_VALUE_SIZE

    big = "x" * (MAX_FIELD_VALUE_SIZE + 4096)
    objs = [{"timestamp": NOW, "service": "cold", "message": "big", "blob": big, "z": 13.0, "a": None},
            {"timestamp": NOW, "service": "cold", "message": "odd", "f": -0.0, "g": 1e20},
            {"timestamp": NOW, "service": "cold", "message": "plain", "user_id": "u-1"}]
    database = old_database(chdouble, [])
    path = tmp_path / "cold" / "2026-06-01" / "old.parquet"
    path.parent.mkdir(parents=True)
    client = clickhouse_connect.get_client(host="127.0.0.1", port=chdouble.port, username=USER, password=PASSWORD,
                                           settings=dict(OLD_SETTINGS))
    try:  # the file as the old release exported one: the JSON column's text beside the patch
        client.command(f"CREATE TABLE {database}.cold_source AS {database}.logs")
        client.raw_insert(f"{database}.cold_source", None,
                          mark_rows(b"\n".join(old_row(o, NOW) for o in objs), "old-3"), fmt="JSONEachRow")
        client.command(f"INSERT INTO FUNCTION file('{path}', 'Parquet') SELECT * EXCEPT (attributes), "
                       f"toString(attributes) AS attributes FROM {database}.cold_source")
        client.command(f"DROP TABLE {database}.cold_source")
    finally:
        client.close()
    before = path.read_bytes()
    store = ClickHouseStore(chdouble.url(database))
    store.open()
    try:
        tiers = Tiers(store, LocalCold(tmp_path / "cold"))
        tiers.open()
        assert path.read_bytes() != before, "the old file was not rewritten"
        got = {}
        for row in store.query(tiers.cold_select(), {}):
            wire = row_to_wire(row)
            wire.pop("observed_timestamp", None)
            assert wire["message"] not in got, f"{wire['message']} twice"
            got[wire["message"]] = wire
        assert sorted(got) == sorted(o["message"] for o in objs)
        for obj in objs:
            assert typed(got[obj["message"]]) == typed(expected(obj)), obj["message"]
        tables = store.query("SELECT name FROM system.tables WHERE database = {d:String}", {"d": database})
        assert not [t for t in tables if str(t["name"]).endswith("__coldtext")], tables
    finally:
        store.close()
