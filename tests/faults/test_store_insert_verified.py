"""The store's disk fills while the WAL's does not: the engine's insert says it wrote the rows and
stores none (chDB's streaming insert on ENOSPC, issue #20). The batcher must count them back, keep
the WAL range, say why, and store everything exactly once when space returns.

The WAL and the batcher's progress live on the ordinary disk; only the store is on the small
filesystem, so the one thing that fails is the store's write.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.faults.conftest import Tally, fill_to, wait_for

from logharbor.record import normalize
from logharbor.server.engine.batcher import Batcher
from logharbor.server.engine.mining import PatternMiner
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_row
from logharbor.server.engine.wal import WriteAheadLog


def entry(ids: list[str], service: str) -> bytes:
    return b"\n".join(encode_row(normalize({"service": service, "rid": rid,
                                            "message": f"order {rid} was paid by card {len(rid)}"}))
                      for rid in ids)


@pytest.mark.parametrize("patterns", [False, True])
def test_an_insert_the_engine_lost_keeps_its_wal_range(small_fs: Path, tmp_path: Path, patterns: bool) -> None:
    tally = Tally(f"store disk full, WAL disk fine (unverified insert, patterns {'on' if patterns else 'off'})")
    store = EmbeddedStore(small_fs / "store")
    store.open()
    wal = WriteAheadLog(tmp_path / "wal", fsync=False)
    wal.open()
    miner = PatternMiner(tmp_path / "patterns") if patterns else None
    batcher = Batcher(wal, store, tmp_path / "batcher.json", max_age_s=0.05, miner=miner,
                      retry_max_s=0.5, free_space=lambda: None)
    batcher.start()
    try:
        def send(first: int, count: int, service: str = "paid") -> None:
            for n in range(first, first + count):
                ids = [f"e{n}-{k}" for k in range(200)]
                wal.submit(entry(ids, service)).result()
                tally.ack(ids)  # fsync'd in the WAL: this is what a 200 promises

        send(0, 5)
        wait_for("the first entries in the store", batcher.caught_up)
        ballast = fill_to(small_fs, 0)
        send(5, 5, service="refunded")  # a new service: new pattern templates as well
        wait_for("the batcher to notice the rows are missing", lambda: batcher.failures >= 2)
        assert not batcher.caught_up()
        assert batcher.last_error is not None
        error = batcher.last_error
        # nothing of the failed batches may be released: the WAL still has them to insert
        assert batcher.progress.intent is not None
        ballast.unlink()
        wait_for("the store to take the batches once space returned", batcher.caught_up)
        assert batcher.last_error is None and batcher.failures == 0
        send(10, 2)
        wait_for("later entries", batcher.caught_up)
    finally:
        batcher.stop()
        wal.close()
    rows = store.query("SELECT JSONExtractString(attributes, 'rid') AS rid FROM logs", {})
    tally.saw(r["rid"] for r in rows)
    templates = store.query("SELECT DISTINCT service FROM patterns WHERE template IS NOT NULL", {})
    store.close()
    tally.extra.update(store_error=error[:120])
    tally.report()
    if patterns:
        assert {t["service"] for t in templates} == {"paid", "refunded"}

