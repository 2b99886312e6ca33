"""A process that runs the real batcher (WAL, chDB store, miner) and dies at a chosen step of
one batch, so the test can check what the replay after it stores.

Usage: python -m tests.patterns.replay_worker DATA_DIR STEP

STEP ``fill``: write the corpus to the WAL (batcher paused) and exit. STEP ``before-insert`` or
``after-insert``: start the batcher; on its first batch, ``os._exit`` right before or right after
the logs insert (the miner's journal and the intent are on disk by then); the ids the batch got
are written to ``DATA_DIR/ids.json`` first. STEP ``replay``: start the batcher, wait until the WAL
is in the store, print the stored (pattern_id, message) pairs as JSON.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import orjson
from tests.patterns.corpus import INJECTED, KNOWN, messages

from logharbor.record import normalize
from logharbor.server.engine.batcher import Batcher
from logharbor.server.engine.mining import PatternMiner
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.patterns import first_seen_ns, group_ids, pattern_info
from logharbor.server.engine.store.rows import encode_row
from logharbor.server.engine.wal import WriteAheadLog


class DyingStore(EmbeddedStore):
    """The real store; the process ends around its first logs insert, as a kill -9 would."""

    step = ""
    data_dir = Path()

    def insert(self, rows: bytes, *, dedup_token: str, retry: bool = False) -> int:
        ids = [[row["pattern_id"], row["message"]] for row in map(orjson.loads, rows.split(b"\n"))]
        (self.data_dir / "ids.json").write_bytes(orjson.dumps(ids))
        if self.step == "before-insert":
            os._exit(17)
        written = super().insert(rows, dedup_token=dedup_token, retry=retry)
        os._exit(18)
        return written


def main() -> None:
    data_dir, step = Path(sys.argv[1]), sys.argv[2]
    store = DyingStore(data_dir / "store") if step != "replay" else EmbeddedStore(data_dir / "store")
    DyingStore.step, DyingStore.data_dir = step, data_dir
    store.open()
    wal = WriteAheadLog(data_dir / "wal")
    wal.open(min_next_seq=Batcher.stored_seq(data_dir / "batcher.json") + 1)
    if step == "fill":
        items = messages(random.Random(21), KNOWN, 300) + messages(random.Random(22), INJECTED, 30)
        for first in range(0, len(items), 30):
            rows = [encode_row(normalize({"service": s, "message": m}, received_ns=1_800_000_000_000_000_000))
                    for s, _, m in items[first:first + 30]]
            wal.submit(b"\n".join(rows)).result()
        wal.close()
        store.close()
        return
    batcher = Batcher(wal, store, data_dir / "batcher.json", max_age_s=0.2,
                      miner=PatternMiner(data_dir / "patterns"))
    batcher.start()
    assert batcher.wait_caught_up(timeout=120)
    rows = store.query(f"SELECT pattern_id, message FROM {store.table} ORDER BY message", {})  # noqa: S608
    counts = store.query("SELECT pattern_id, sum(count) AS n, countIf(template IS NOT NULL) AS t "
                         "FROM patterns GROUP BY pattern_id", {})
    info = pattern_info(store)  # the helpers other parts (alerts, UI) call
    first = first_seen_ns(store, info[0]["tenant"], info[0]["service"], info[0]["pattern_id"])
    missing = first_seen_ns(store, "", "web", "0" * 16)
    groups = group_ids(store, sorted({r["pattern_id"] for r in rows}))
    print(orjson.dumps({"rows": rows, "counts": counts, "info": info, "first": first,
                        "missing": missing, "groups": groups}).decode())
    batcher.stop()
    wal.close()
    store.close()


if __name__ == "__main__":
    main()
