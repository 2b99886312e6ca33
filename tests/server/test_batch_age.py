"""A batch's age runs from when its oldest entry became durable, not from when the batcher looked.

Entries written while a batch is being stored used to wait for that insert and then a whole age
again (ingest → searchable: an age plus two inserts). The clock here is turned by hand, so the
test says what goes when without timing anything.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from tests.faults.conftest import wait_for

from logharbor.server.engine.batcher import Batcher
from logharbor.server.engine.store.batches import row_count
from logharbor.server.engine.wal import WriteAheadLog


class HeldStore:
    """Takes every batch (its rows counted as stored); the first insert waits until released."""

    def __init__(self) -> None:
        self.batches: list[bytes] = []
        self.inserting = threading.Event()
        self.release = threading.Event()

    def insert(self, rows: bytes, *, dedup_token: str, retry: bool = False) -> int:
        self.inserting.set()
        assert self.release.wait(120), "the test never released the first insert"
        self.batches.append(rows)
        return row_count(rows)

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the batcher used store.{name}")


def test_entries_written_during_an_insert_go_once_their_own_age_has_passed(tmp_path: Path) -> None:
    now = [100.0]
    store = HeldStore()
    wal = WriteAheadLog(tmp_path / "wal", fsync=False)
    wal.open()
    batcher = Batcher(wal, store, tmp_path / "batcher.json", max_age_s=10.0,  # type: ignore[arg-type]
                      clock=lambda: now[0])
    batcher.start()
    try:
        wal.submit(b'{"message":"first"}').result()

        def turn_and_look() -> bool:
            now[0] += 10.0  # until the first batch is old enough to be cut
            return store.inserting.is_set()

        wait_for("the first batch's insert", turn_and_look)
        wal.submit(b'{"message":"second"}').result()  # durable while the first batch is stored
        now[0] += 10.0  # the second entry is at least 10 s old now: its age has passed ...
        store.release.set()
        # ... so it goes at once; counted from after the insert it would wait until 130 (never here)
        wait_for("the second batch", lambda: len(store.batches) == 2)
    finally:
        store.release.set()
        batcher.stop(drain=False)
        wal.close()
    assert [row_count(b) for b in store.batches] == [1, 1]
