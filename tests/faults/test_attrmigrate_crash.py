"""Kill -9 during the migration of an old-layout store to text attributes (store/attrmigrate.py):
whatever step the server dies at, the next start finishes or redoes it, and every record of the
old hot and warm tables is there once, with every value as it was (no record lost, doubled or
altered); no half-made table is left behind.

Each start is its own process (``tests/store/migrate_child.py``, SIGKILL sent to itself just
before the chosen statement): one chain of starts killed at the steps that matter (a page of
patched rows, before the swap, between the swap and the drop, in the hot and the warm table),
then a start that completes. ``LOGHARBOR_FULL_TESTS=1`` also kills a fresh copy before every
single statement of a migration, each followed by a completing start.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.conftest import ROOT
from tests.faults.conftest import Tally, fill_to
from tests.record.values import typed
from tests.retention.helpers import NOW
from tests.store.oldlayout import old_row
from tests.store.test_attrmigrate import corpus, expected

from logharbor import exactjson

FULL = os.environ.get("LOGHARBOR_FULL_TESTS") == "1"
PAGE = "5"  # patched rows per page: several pages, so a kill can fall between two


def start(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    return subprocess.run([sys.executable, "-m", "tests.store.migrate_child", "--path", str(path),
                           "--page", PAGE, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def killed(path: Path, *args: str) -> None:
    done = start(path, *args)
    assert done.returncode == -signal.SIGKILL, (args, done.returncode, done.stderr[-2000:])


def finish_and_count(path: Path, tally: Tally, objs: dict[str, dict[str, Any]], tmp: Path) -> None:
    dump = tmp / "dump.ndjson"
    done = start(path, "--dump", str(dump))
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [exactjson.loads(line) for line in dump.read_bytes().splitlines() if line]
    tables = lines.pop()["tables"]
    assert not [t for t in tables if t.endswith("__attrtext")], tables
    assert "patterns_mv" in tables
    for line in lines:
        wire = line["wire"]
        wire.pop("observed_timestamp", None)
        tally.saw([f"{line['tier']}:{wire['message']}"])
        assert typed(wire) == typed(expected(objs[wire["message"]])), wire["message"]


@pytest.fixture(scope="module")
def old_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]], set[str]]:
    """An old-layout store (made once, copied per run): three copies of the corpus."""
    objs: dict[str, dict[str, Any]] = {}
    for copy in range(3):
        for obj in corpus():
            obj = {**obj, "message": f"{obj['message']}-{copy}"}
            objs[obj["message"]] = obj
    listed = list(objs.values())
    hot, warm = listed[::2], listed[1::2]
    path = tmp_path_factory.mktemp("oldstore") / "store"
    proc = subprocess.run([sys.executable, "-c", "import sys, orjson; from pathlib import Path; "
                           "from tests.store.oldlayout import make_old_store; d = orjson.loads(sys.stdin.buffer.read()); "
                           "make_old_store(Path(d['path']), [r.encode() for r in d['hot']], [r.encode() for r in d['warm']])"],
                          input=orjson.dumps({"path": str(path),
                                              "hot": [old_row(o, NOW).decode() for o in hot],
                                              "warm": [old_row(o, NOW).decode() for o in warm]}),
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"},
                          capture_output=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    acked = {f"hot:{o['message']}" for o in hot} | {f"warm:{o['message']}" for o in warm}
    return path, objs, acked


CHAIN = [  # (statement pattern, which match in that start)
    (r"^LOAD `logs__attrtext`", 2),              # a page of patched rows copied, the next not
    (r"^EXCHANGE TABLES `logs` AND", 1),          # copied and counted, not swapped
    (r"^DROP TABLE IF EXISTS `logs__attrtext`", 2),  # swapped, the old rows' table not dropped
    (r"^INSERT INTO `logs_warm__attrtext`", 1),   # warm: the new table made, nothing copied
    (r"^DROP TABLE IF EXISTS `logs_warm__attrtext`", 2),  # warm swapped, not dropped
]


def test_a_migration_killed_at_each_step_is_finished_by_the_next_start(
        tmp_path: Path, old_store: tuple[Path, dict[str, dict[str, Any]], set[str]]) -> None:
    source, objs, acked = old_store
    path = tmp_path / "store"
    shutil.copytree(source, path, symlinks=True)
    tally = Tally("attribute migration killed at each step")
    tally.ack(acked)
    for pattern, nth in CHAIN:
        killed(path, "--kill-before", pattern, "--nth", str(nth))
    finish_and_count(path, tally, objs, tmp_path)
    tally.extra["kills"] = len(CHAIN)
    tally.report()


@pytest.mark.skipif(not FULL, reason="every statement of a migration: LOGHARBOR_FULL_TESTS=1")
@pytest.mark.timeout(3600)  # two starts per statement (~35 statements)
def test_a_migration_killed_before_any_statement_is_finished_by_the_next_start(
        tmp_path: Path, old_store: tuple[Path, dict[str, dict[str, Any]], set[str]]) -> None:
    source, objs, acked = old_store
    probe = tmp_path / "probe"
    shutil.copytree(source, probe, symlinks=True)
    done = start(probe)
    assert done.returncode == 0, done.stderr[-2000:]
    total = int(done.stdout.split("statements ")[1].split()[0])
    tally = Tally("attribute migration killed before every statement")
    for n in range(1, total + 1):
        path = tmp_path / f"store-{n}"
        shutil.copytree(source, path, symlinks=True)
        tally.ack({f"{n}/{a}" for a in acked})
        killed(path, "--kill-at", str(n))
        run = Tally(f"kill at {n}")
        run.ack(acked)
        finish_and_count(path, run, objs, tmp_path)
        tally.saw(f"{n}/{i}" for i in run.stored.elements())
        shutil.rmtree(path)
    tally.extra["kills"] = total
    tally.report()


def test_a_disk_too_full_for_the_copy_refuses_the_start_and_keeps_the_table(
        small_fs: Path, tmp_path: Path, old_store: tuple[Path, dict[str, dict[str, Any]], set[str]]) -> None:
    """The migration needs room for a copy: on a disk without it the start fails saying so, the
    old tables untouched; once room is made, the next start migrates every record exactly."""
    source, objs, acked = old_store
    path = small_fs / "store"
    shutil.copytree(source, path, symlinks=True)
    ballast = fill_to(small_fs, 4 * 1024 * 1024)
    done = start(path)
    assert done.returncode != 0 and "free disk" in done.stderr, done.stderr[-2000:]
    ballast.unlink()
    tally = Tally("attribute migration refused on a full disk, then done")
    tally.ack(acked)
    finish_and_count(path, tally, objs, tmp_path)
    tally.report()
