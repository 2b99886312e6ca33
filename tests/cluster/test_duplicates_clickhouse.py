"""``logharbor store duplicates --store clickhouse://…`` on a ClickHouse server (the HTTP double):
the state the old tier mover left (a record kept in the hot table and copied into a cold file at
each tick; a line sent twice in one request copied the same way) is listed, and ``--remove``
leaves each record as many times as it was sent (server/engine/store/duplicates.py)."""

from __future__ import annotations

# ruff: noqa: S608 - tests build SQL from the tiers' own quoted names
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from tests.conftest import ROOT
from tests.retention.helpers import NOW

from logharbor.server.engine.store.clickhouse import ClickHouseStore
from logharbor.server.engine.store.coldstore import LocalCold
from logharbor.server.engine.store.rows import encode_record
from logharbor.server.engine.store.tiers import Tiers

from .conftest import Double

pytestmark = pytest.mark.e2e  # runs the logharbor command in processes of its own

DAY = 86_400 * 10**9


def tiers_of(url: str, cold: Path) -> tuple[ClickHouseStore, Tiers]:
    store = ClickHouseStore(url)
    store.open()
    tiers = Tiers(store, LocalCold(cold))
    tiers.open()
    return store, tiers


def messages(tiers: Tiers) -> Counter[str]:
    rows = tiers.store.query(f"SELECT message FROM {tiers.hot} UNION ALL SELECT message FROM "
                             f"({tiers.cold_select()})", {})
    return Counter(str(r["message"]) for r in rows)


def test_the_old_movers_copies_on_a_clickhouse_server_are_removed(chdouble: Double, tmp_path: Path) -> None:
    url, cold = chdouble.url("dups_ch"), tmp_path / "cold"
    store, tiers = tiers_of(url, cold)
    try:
        when = NOW - 40 * DAY
        odd = {"timestamp": when, "service": "dup", "message": "negative zero", "v": -0.0}
        twice = {"timestamp": when, "service": "dup", "message": "sent twice", "v": 1e20}
        once = {"timestamp": when, "service": "dup", "message": "moved once", "v": 1}
        rows = [encode_record(o, received_ns=when + 10**9) for o in (odd, twice, twice, once)]
        assert store.insert(b"\n".join(rows), dedup_token="req-1") == 4
        # the old mover's state: two ticks copied the same rows into two cold files, and only the
        # record it could match left the hot table
        for name in ("all.hot.a", "all.hot.b"):
            tiers.cold.write(store, f"2026-04-22/{name}.parquet",  # type: ignore[union-attr]
                             f"SELECT {tiers.export_list()} FROM {tiers.hot} WHERE message != 'moved once'", {})
        tiers.cold.write(store, "2026-04-22/all.hot.c.parquet",  # type: ignore[union-attr]
                         f"SELECT {tiers.export_list()} FROM {tiers.hot} WHERE message = 'moved once'", {})
        store.execute(f"DELETE FROM {tiers.hot} WHERE message = 'moved once'")
        tiers.refresh_view()
        assert messages(tiers) == Counter({"negative zero": 3, "sent twice": 6, "moved once": 1})
    finally:
        store.close()
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "COLUMNS": "250"}
    done = subprocess.run([sys.executable, "-m", "logharbor.cli.main", "store", "duplicates", str(tmp_path),
                           "--store", url, "--cold-storage", str(cold), "--remove"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 extra copies of the old mover, 0 listed only" in done.stdout, done.stdout
    assert "removed 6 extra copies; 0 records still in more than one place" in done.stdout
    store, tiers = tiers_of(url, cold)
    try:
        assert messages(tiers) == Counter({"negative zero": 1, "sent twice": 2, "moved once": 1})
    finally:
        store.close()
