"""The store contract against a real ClickHouse server or cluster: runs only when
``LOGHARBOR_CLICKHOUSE_URL`` is set (e.g. ``clickhouse://default:pw@ch1:8123/lh_test?cluster=prod``).

It checks what the HTTP double cannot: real ``ON CLUSTER`` DDL, ``ReplicatedMergeTree`` with a
``Distributed`` table, foreground distributed inserts and their deduplication. It works in a
database of its own (the URL's, suffixed) and drops it at the end."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from logharbor.server.engine.store.clickhouse import ClickHouseStore
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.sqlsafe import quote_identifier

from .test_store_contract import QUERIES, _canon, embedded, embedded_table, load, run  # noqa: F401

URL = os.environ.get("LOGHARBOR_CLICKHOUSE_URL")


@pytest.mark.clickhouse
@pytest.mark.skipif(not URL, reason="LOGHARBOR_CLICKHOUSE_URL is not set")
def test_contract_on_a_real_clickhouse(embedded: EmbeddedStore) -> None:  # noqa: F811
    assert URL is not None
    base, _, query = URL.partition("?")
    database = f"lh_test_{uuid.uuid4().hex[:8]}"
    url = base.rsplit("/", 1)[0] + "/" + database + (f"?{query}" if query else "")
    store = ClickHouseStore(url, writer_id="contract")
    reference = embedded_table(embedded, "real_reference")
    load(reference)
    store.open()
    try:
        load(store, "wal-1-1")
        load(store, "wal-1-1")  # replayed: a no-op on every shard
        count: Any = store.query(f"SELECT count() AS n FROM {store.table}", {})[0]["n"]  # noqa: S608
        assert int(count) == 60
        for q in QUERIES:
            assert _canon(run(store, q)) == _canon(run(reference, q)), q
        assert store.stats().rows == 60
    finally:
        on_cluster = f" ON CLUSTER {quote_identifier(store.cluster)}" if store.cluster else ""
        store.execute(f"DROP DATABASE IF EXISTS {quote_identifier(database)}{on_cluster} SYNC")
        store.close()
