"""Kill -9 during ``logharbor migrate --to clickhouse://…?cluster=NAME`` (store/clusterconvert.py),
on the HTTP double: whatever step the command dies at, running it again finishes the conversion,
and every record of the old cluster table is there once, every value as it was.

One chain of runs on one database, each killed at the next step that matters (a day's copy made,
the next not; a page of patched rows in, the next not; copied and checked but not marked verified;
verified, the old table half dropped; the table made again, one partition put back; all put back,
the copy not dropped), then a run that completes; a server started after any of them refuses to
start, naming the command. ``LOGHARBOR_FULL_TESTS=1`` also kills a fresh conversion before every
single statement it runs, each followed by a completing run. What the double cannot show (replicas, Keeper,
several shards) is said in tests/cluster/test_cluster_convert.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.cluster.conftest import CLUSTER, Double, start_double, stop_double
from tests.cluster.oldcluster import old_cluster_database, old_rows, spread_over_days
from tests.conftest import ROOT
from tests.faults.conftest import Tally
from tests.record.values import typed
from tests.store.test_attrmigrate import corpus

from logharbor.record import normalize, to_wire
from logharbor.server.engine.store.base import StoreError
from logharbor.server.engine.store.clickhouse import ClickHouseStore
from logharbor.server.engine.store.rows import row_to_wire

FULL = os.environ.get("LOGHARBOR_FULL_TESTS") == "1"
CHAIN = [  # (statement pattern, which match in that run)
    (r"^INSERT INTO `logs__attrtext`", 2),                   # day 1 copied, day 2 not
    (r"^LOAD `logs__attrtext`", 2),                          # a page of patched rows in, the next not
    (r"MODIFY COMMENT", 1),                                  # copied and checked, not marked verified
    (r"^DROP TABLE IF EXISTS `logs_local` ", 1),             # view and Distributed dropped, the table not
    (r"REPLACE PARTITION", 2),                               # made again, one partition put back
    (r"^DROP TABLE IF EXISTS `logs_local__attrtext`", 1),    # all put back, the copy not dropped
]


@pytest.fixture
def double(tmp_path: Path) -> Iterator[Double]:
    d = start_double(tmp_path / "double")
    yield d
    stop_double(d)


def run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    return subprocess.run([sys.executable, "-m", "tests.cluster.convert_child", "--url", url,
                           "--page", "2000", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def wanted(obj: dict[str, Any]) -> dict[str, Any]:
    wire = to_wire(normalize(obj, received_ns=obj["timestamp"]))
    wire.pop("observed_timestamp", None)
    return wire


def test_a_conversion_killed_at_each_step_is_finished_by_running_it_again(double: Double) -> None:
    objs = {o["message"]: o for o in spread_over_days(corpus(), 3)}
    database = old_cluster_database(double, [old_rows([o], o["timestamp"]) for o in objs.values()])
    url = double.url(database, CLUSTER)
    tally = Tally("cluster conversion killed at each step")
    tally.ack(objs)
    for pattern, nth in CHAIN:
        done = run(url, "--kill-before", pattern, "--nth", str(nth))
        assert done.returncode == -signal.SIGKILL, (pattern, done.returncode, done.stderr[-2000:])
        server = ClickHouseStore(url)  # a server started meanwhile refuses, naming the command
        with pytest.raises(StoreError, match="logharbor migrate --to"):
            server.open()
        server.close()
    finish_and_count(url, database, objs, tally)
    tally.extra["kills"] = len(CHAIN)
    tally.report()


@pytest.mark.skipif(not FULL, reason="every statement of a conversion: LOGHARBOR_FULL_TESTS=1")
@pytest.mark.timeout(3600)
def test_a_conversion_killed_before_any_statement_is_finished_by_running_it_again(double: Double) -> None:
    objs = {o["message"]: o for o in spread_over_days(corpus(), 3)}
    batches = [old_rows([o], o["timestamp"]) for o in objs.values()]
    probe = run(double.url(old_cluster_database(double, batches, "probe"), CLUSTER))
    assert probe.returncode == 0, probe.stderr[-2000:]
    total = int(probe.stdout.split("statements ")[1].split()[0])
    tally = Tally("cluster conversion killed before every statement")
    for n in range(1, total + 1):
        database = old_cluster_database(double, batches, f"kill{n}")
        url = double.url(database, CLUSTER)
        tally.ack({f"{n}/{m}" for m in objs})
        done = run(url, "--kill-before", ".", "--nth", str(n))
        assert done.returncode == -signal.SIGKILL, (n, done.returncode, done.stderr[-2000:])
        one = Tally(f"kill before statement {n}")
        one.ack(objs)
        finish_and_count(url, database, objs, one)
        assert not one.lost and not one.duplicated, one.figures()
        tally.saw(f"{n}/{m}" for m in one.stored.elements())
    tally.extra["kills"] = total
    tally.report()


def finish_and_count(url: str, database: str, objs: dict[str, dict[str, Any]], tally: Tally) -> None:
    """Run the conversion to its end, start a server on it and count every record it holds."""
    done = run(url)
    assert done.returncode == 0, done.stderr[-3000:]
    store = ClickHouseStore(url)
    store.open()  # a server starts on it
    try:
        for row in store.query(f"SELECT * FROM {store.table}", {}):  # noqa: S608 - a quoted name
            wire = row_to_wire(row)
            wire.pop("observed_timestamp", None)
            tally.saw([wire["message"]])
            assert typed(wire) == typed(wanted(objs[wire["message"]])), wire["message"]
        names = {r["name"] for r in store.query("SELECT name FROM system.tables WHERE database = {d:String}",
                                                {"d": database})}
        assert not [n for n in names if "__attrtext" in n], names
    finally:
        store.close()
