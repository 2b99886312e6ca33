"""``kill -9`` in the middle of a move, then restart: every record exists exactly once across the
tiers, and the tiers hold what the rules say."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.conftest import ROOT
from tests.retention.crash_worker import AGES, PER_GROUP, POLICY, dataset
from tests.retention.helpers import counts, open_tiers, set_policy

pytestmark = pytest.mark.faults  # a job cut by kill -9 and resumed

IDENTITY = "sipHash64(timestamp, service, level, message, trace_id)"


def _expected() -> dict[str, int]:
    out = {"hot": 0, "warm": 0, "cold": 0}
    for age in AGES:
        alb = "hot" if age < 7 else "warm" if age < 30 else "cold"
        rest = "hot" if age < 3 else "cold"
        out[alb] += 2 * PER_GROUP
        out[rest] += 2 * PER_GROUP
    return out


def _run_until(data_dir: Path, step: str, move: int) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tests.retention.crash_worker", str(data_dir), step, str(move)],
                            cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while not (data_dir / "at-step").exists():
            assert proc.poll() is None, f"worker exited with {proc.returncode} before step {step}"
            assert time.monotonic() < deadline, "worker never reached the step"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert not (data_dir / "finished").exists()


@pytest.mark.parametrize(("step", "move"), [("intent", 1), ("copied", 3), ("removed", 5)])
def test_kill9_during_a_move(tmp_path: Path, step: str, move: int) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    _run_until(data_dir, step, move)
    store, tiers, mover = open_tiers(data_dir)
    try:
        total = len(dataset())
        # recovery alone already leaves every record exactly once
        assert mover.recover() >= 1  # the killed move, and any copied ones of its batch
        union = f"(SELECT {IDENTITY} AS id FROM {store.table})"  # noqa: S608
        row = store.query(f"SELECT count() AS n, uniqExact(id) AS u FROM {union}", {})[0]  # noqa: S608
        assert (int(row["n"]), int(row["u"])) == (total, total)
        # and the next run finishes the job by the rules
        set_policy(mover, POLICY)
        mover.tick()
        assert counts(tiers) == _expected()
        row = store.query(f"SELECT count() AS n, uniqExact(id) AS u FROM {union}", {})[0]  # noqa: S608
        assert (int(row["n"]), int(row["u"])) == (total, total)
    finally:
        store.close()
