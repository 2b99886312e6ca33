"""``logharbor migrate --to clickhouse://…?cluster=NAME`` converts a cluster's logs table of the old
layout (``attributes JSON`` + patch, replicated local table behind a Distributed one) to the text
layout (store/clusterconvert.py), on the HTTP double: every record there once, every value exact,
the patterns view back, the server then starts on it; the refusal at start names the command.

The double runs the real Distributed engine over one local shard; ``ON CLUSTER`` is removed and
``ReplicatedMergeTree`` is a ``MergeTree`` there (tests/cluster/chdouble.py), so replication, the
Keeper DDL queue, several shards and replica paths are not exercised here (docs/scaling.md says
what to check on a real cluster). The kill -9 variant is tests/faults/test_cluster_convert_crash.py.
"""

from __future__ import annotations

# ruff: noqa: S608 - tests build SQL from quoted names
import os
import subprocess
import sys
from typing import Any

import pytest
from tests.conftest import ROOT
from tests.record.values import typed
from tests.retention.helpers import NOW
from tests.store.test_attrmigrate import corpus

from logharbor.record import normalize, to_wire
from logharbor.server.engine.store.base import StoreError
from logharbor.server.engine.store.clickhouse import ClickHouseStore
from logharbor.server.engine.store.rows import encode_record, row_to_wire

from .conftest import CLUSTER, Double
from .oldcluster import old_cluster_database, old_rows, spread_over_days

pytestmark = pytest.mark.e2e  # runs the logharbor command in processes of its own


def migrate(url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "logharbor.cli.main", "migrate", "--to", url], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300, check=False)


def wanted(obj: dict[str, Any]) -> dict[str, Any]:
    wire = to_wire(normalize(obj, received_ns=obj["timestamp"]))
    wire.pop("observed_timestamp", None)
    return wire


def pattern_count(url: str) -> int:
    """Records the patterns tables have counted (read straight from the patterns table)."""
    store = ClickHouseStore(url)
    store.connect()
    try:
        return int(store.query("SELECT sum(count) AS n FROM patterns_local", {})[0]["n"] or 0)
    finally:
        store.close()


def test_a_cluster_table_of_the_old_layout_is_converted_by_logharbor_migrate(chdouble: Double) -> None:
    objs = spread_over_days(corpus(), 3)
    twice = {"timestamp": NOW, "service": "mig", "message": "sent twice", "f": -0.0}
    database = old_cluster_database(chdouble, [old_rows([o], o["timestamp"]) for o in objs]
                                    + [old_rows([twice], NOW), old_rows([twice], NOW)])
    url = chdouble.url(database, CLUSTER)
    patterns_before = pattern_count(url)
    assert patterns_before > 0
    refused = ClickHouseStore(url)
    with pytest.raises(StoreError, match="logharbor migrate --to") as info:
        refused.open()
    refused.close()
    assert "s3cret" not in str(info.value)  # the command named without the password

    done = migrate(url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 day partitions copied now" in done.stderr, done.stderr

    store = ClickHouseStore(url)
    store.open()
    try:
        kinds = store.query("SELECT table, type FROM system.columns WHERE database = {d:String} "
                            "AND name = 'attributes' ORDER BY table", {"d": database})
        assert kinds == [{"table": "logs", "type": "String"}, {"table": "logs_local", "type": "String"}]
        names = {r["name"] for r in store.query("SELECT name FROM system.tables WHERE database = {d:String}",
                                                {"d": database})}
        assert not [n for n in names if "__attrtext" in n], names
        assert "patterns_local_mv" in names
        got = {}
        for row in store.query(f"SELECT * FROM {store.table} WHERE message != 'sent twice'", {}):
            wire = row_to_wire(row)
            wire.pop("observed_timestamp", None)
            assert wire["message"] not in got, f"{wire['message']} stored twice"
            got[wire["message"]] = wire
        assert sorted(got) == sorted(o["message"] for o in objs)
        for obj in objs:
            assert typed(got[obj["message"]]) == typed(wanted(obj)), obj["message"]
        twins = store.query(f"SELECT count() AS n FROM {store.table} WHERE message = 'sent twice'", {})
        assert int(twins[0]["n"]) == 2  # a record really sent twice stays twice
        new = {"timestamp": NOW, "service": "mig", "message": "new", "z": 13.0}
        assert store.insert(encode_record(new, received_ns=NOW), dedup_token="new-1") == 1
        text = store.query(f"SELECT attributes FROM {store.table} WHERE message = 'new'", {})[0]["attributes"]
        assert text == '{"z":13.0}'
        # the old rows' pattern counts kept, none counted twice by the copy, the new row counted
        assert pattern_count(url) == patterns_before + 1
    finally:
        store.close()
    again = migrate(url)  # nothing left to do
    assert again.returncode == 0 and "already this release's layout" in again.stderr, again.stderr
