"""The copies the tier mover of the release before text attributes left behind
(server/engine/store/duplicates.py), on a data directory that release made itself
(``fixtures/old-mover-duplicates.tgz``, written by ``fixtures/make_mover_duplicates.py`` with the
old code: its mover kept every ``-0.0``/``1e20`` record in its table and copied it again into a
new cold file at each tick). ``logharbor store duplicates`` lists them, ``--remove`` leaves each
record as many times as it was sent — a line sent twice in one request stays twice, a line sent
in two requests stays twice — and a group whose places disagree is only listed."""

# ruff: noqa: S608 - tests build SQL from the tiers' own quoted names
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import pytest
from tests.conftest import ROOT

from logharbor import exactjson
from logharbor.server.engine.store.coldstore import LocalCold
from logharbor.server.engine.store.duplicates import find_duplicates
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.tiers import Tiers

pytestmark = pytest.mark.e2e  # runs the logharbor command in processes of its own

FIXTURE = Path(__file__).parent / "fixtures" / "old-mover-duplicates.tgz"
#: what was sent (fixtures/make_mover_duplicates.py): 10 records once, one line twice in one
#: request, one line in two requests
SENT = Counter({**{f"record {i} of checkout at {age}d": 1 for age in (10, 40) for i in range(5)},
                "record 50 of checkout at 40d": 2, "record 60 of checkout at 40d": 2})


def unpack(tmp: Path) -> Path:
    with tarfile.open(FIXTURE) as tar:
        tar.extractall(tmp, filter="data")
    return tmp / "data"


def command(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}", "COLUMNS": "250"}
    return subprocess.run([sys.executable, "-m", "logharbor.cli.main", "store", "duplicates", str(data), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)


def every_row(tiers: Tiers) -> list[dict[str, str]]:
    parts = [f"SELECT message, attributes FROM {tiers.hot}", f"SELECT message, attributes FROM {tiers.warm}"]
    if tiers.cold is not None and tiers.cold.keys():
        parts.append(f"SELECT message, attributes FROM ({tiers.cold_select()})")
    return tiers.store.query(" UNION ALL ".join(parts), {})


def open_tiers(data: Path) -> tuple[EmbeddedStore, Tiers]:
    store = EmbeddedStore(data / "store")
    store.open()
    tiers = Tiers(store, LocalCold(data / "cold"))
    tiers.open()
    return store, tiers


def test_the_old_movers_copies_are_found_and_removed_keeping_records_sent_twice(tmp_path: Path) -> None:
    data = unpack(tmp_path)
    store, tiers = open_tiers(data)  # upgraded here, as a start would
    try:
        before = Counter(r["message"] for r in every_row(tiers))
        assert sum(before.values()) == 34  # 14 rows sent, 20 copies of the old mover
        groups = find_duplicates(tiers)
        assert all(g.removable for g in groups)
        assert sum(g.extra_rows for g in groups) == 20
        twice = next(g for g in groups if g.message == "record 50 of checkout at 40d")
        assert set(twice.places.values()) == {2}, twice  # the two lines travel together
        assert "hot" in twice.places and len(twice.places) > 2
        assert not [g for g in groups if g.message == "record 60 of checkout at 40d"]  # two requests
    finally:
        store.close()

    listed = command(data)
    assert listed.returncode == 1, listed.stdout + listed.stderr
    assert "20 extra copies of the old mover, 0 listed only" in listed.stdout, listed.stdout
    removed = command(data, "--remove")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert "removed 20 extra copies; 0 records still in more than one place" in removed.stdout

    store, tiers = open_tiers(data)
    try:
        rows = every_row(tiers)
        assert Counter(r["message"] for r in rows) == SENT
        values = {r["message"]: exactjson.loads(r["attributes"]) for r in rows}
        assert repr(values["record 0 of checkout at 40d"]["v"]) == "-0.0"
        assert values["record 1 of checkout at 40d"]["v"] == 1e20
        assert repr(values["record 50 of checkout at 40d"]["v"]) == "-0.0"
        assert not find_duplicates(tiers)
        # a record whose places disagree (no path of the old mover makes it): listed, never removed
        cold_row = tiers.store.query(f"SELECT {tiers.column_list} FROM ({tiers.cold_select()}) "
                                     "WHERE message = 'record 2 of checkout at 40d'", {})
        assert len(cold_row) == 1
        line = exactjson.dumps(cold_row[0])
        tiers.store.load_rows(tiers.hot, line + b"\n" + line)
    finally:
        store.close()
    odd = command(data, "--remove")
    assert odd.returncode == 1, odd.stdout + odd.stderr
    assert "counts differ between places: listed only, never removed" in odd.stdout
    assert "0 extra copies of the old mover, 1 listed only" in odd.stdout
    store, tiers = open_tiers(data)
    try:
        assert Counter(r["message"] for r in every_row(tiers))["record 2 of checkout at 40d"] == 3
    finally:
        store.close()
