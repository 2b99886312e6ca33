"""The ClickHouse store gives a logs table of the release before per-column codecs
(tests/store/text_schema_v1.sql) schema.sql's codecs at start, as the embedded store does
(tests/store/test_codecs.py), on one server and on a cluster (through the HTTP double), and the
rows read back exactly; the next start has no codec left to set."""

from __future__ import annotations

# ruff: noqa: S608 - tests build SQL from quoted names
import itertools

import clickhouse_connect
import pytest
from tests.record.values import typed
from tests.retention.helpers import NOW
from tests.store.test_attrmigrate import corpus, expected
from tests.store.test_codecs import BARE, v1_ddl

from logharbor.server.engine.store.attributes import ENGINE_SETTINGS
from logharbor.server.engine.store.batches import mark_rows
from logharbor.server.engine.store.clickhouse import ClickHouseStore
from logharbor.server.engine.store.migrations import codec_migrations, missing, schema_codecs
from logharbor.server.engine.store.rows import encode_record, row_to_wire

from .conftest import CLUSTER, PASSWORD, USER, Double

_db = itertools.count()


@pytest.mark.parametrize("cluster", [None, CLUSTER])
def test_a_table_of_the_previous_release_gets_the_codecs(chdouble: Double, cluster: str | None) -> None:
    objs = corpus()
    database = f"codecs_{next(_db)}"
    local = "logs_local" if cluster else "logs"
    client = clickhouse_connect.get_client(host="127.0.0.1", port=chdouble.port, username=USER, password=PASSWORD,
                                           settings=dict(ENGINE_SETTINGS))
    try:
        client.command(f"CREATE DATABASE {database}")
        client.command(v1_ddl(local).replace(f"`{local}`", f"{database}.{local}"))
        rows = mark_rows(b"\n".join(encode_record(o, received_ns=NOW) for o in objs), "v1-1")
        client.raw_insert(f"{database}.{local}", None, rows, fmt="JSONEachRow")
    finally:
        client.close()
    for start in ("first", "second"):
        store = ClickHouseStore(chdouble.url(database, cluster))
        store.open()
        try:
            have = {str(r["name"]): str(r["c"]) for r in store.query(
                "SELECT name, compression_codec AS c FROM system.columns WHERE database = {d:String} "
                "AND table = {t:String}", {"d": database, "t": local})}
            assert {c: have[c] for c in BARE} == {c: schema_codecs()[c] for c in BARE}, start
            assert missing(store.query, codec_migrations(local), database) == [], start
            got = {}
            for row in store.query(f"SELECT * FROM {store.table}", {}):
                wire = row_to_wire(row)
                wire.pop("observed_timestamp", None)
                got[wire["message"]] = wire
            assert sorted(got) == sorted(o["message"] for o in objs)
            for obj in objs:
                assert typed(got[obj["message"]]) == typed(expected(obj)), obj
        finally:
            store.close()
