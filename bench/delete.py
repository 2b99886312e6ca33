"""Delete-by-query benchmark: what erasing one user's records costs at a given store size.

Generates N records of the demo mix (as bench/retention.py does, in chunks) spread over D days,
gives a handful of them, on a few days, one user id, optionally moves the older days to warm and
cold, then runs a real delete job (server/features/retention/delete.py, without a WAL: the store alone)
and reports each step's seconds, the partitions and bytes rewritten, and how long the engine took
to take the replaced parts off the disk:

    python bench/delete.py --records 1000000
    python bench/delete.py --records 10000000 --days 30

Prints one JSON line per stage.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from logharbor.record import normalize  # noqa: E402
from logharbor.server.engine.store.coldstore import LocalCold  # noqa: E402
from logharbor.server.engine.store.embedded import EmbeddedStore  # noqa: E402
from logharbor.server.engine.store.rows import encode_row  # noqa: E402
from logharbor.server.engine.store.sqlsafe import quote_identifier  # noqa: E402
from logharbor.server.engine.store.tiers import Tiers  # noqa: E402
from logharbor.server.features.retention.delete import DeleteJobs  # noqa: E402
from logharbor.server.features.retention.mover import Mover  # noqa: E402
from logharbor.server.features.retention.rules import RetentionPolicy  # noqa: E402
from logharbor.server.meta.db import MetaStore  # noqa: E402
from retention import DAY, demo_mix, emit  # noqa: E402 - the same generator as the retention bench

USER = "bench-erase-user-0001"
CHUNK = 100_000


def partition_bytes(store: EmbeddedStore, table: str) -> dict[str, int]:
    rows = store.query("SELECT partition_id AS p, sum(bytes_on_disk) AS b FROM system.parts WHERE active "
                       "AND database = currentDatabase() AND table = {t:String} GROUP BY p", {"t": table})
    return {str(r["p"]): int(r["b"]) for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--user-records", type=int, default=12, help="records given the erased user id")
    parser.add_argument("--user-days", type=int, default=3, help="days those records are spread over")
    parser.add_argument("--tiers", action="store_true", help="move days older than 7 d to warm, 20 d to cold")
    parser.add_argument("--copies", type=int, default=1,
                        help="store each generated record this many times, a millisecond apart, copied by "
                             "the engine (generating 10M demo records takes hours on a shared 2-core "
                             "machine; copies compress better than distinct records)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    args = parser.parse_args()

    now = time.time_ns()
    tmp = Path(tempfile.mkdtemp(prefix="lh-delete-bench-"))
    store = EmbeddedStore(tmp / "store")
    store.open()
    meta = MetaStore.for_data_dir(tmp)
    meta.create()
    # as the server does at start: the tables' cleanup period is set before anything else
    tiers = Tiers(store, LocalCold(tmp / "cold"))
    tiers.open()
    try:
        unique = args.records // args.copies
        chunks = max(1, unique // CHUNK)
        span = args.days * DAY // chunks
        start = now - args.days * DAY
        # the erased user's records: a few on each of a few days spread over the range
        per_day = {int(i * args.days / args.user_days): max(1, args.user_records // args.user_days)
                   for i in range(args.user_days)}
        t0 = time.perf_counter()
        for c in range(chunks):
            lines = demo_mix(min(CHUNK, unique - c * CHUNK), start + c * span, span, seed=c)
            records = [normalize(orjson.loads(line)) for line in lines]
            store.insert(b"\n".join(encode_row(r) for r in records), dedup_token=f"bench-{c}")
        if args.copies > 1:  # copied by the engine, each a millisecond later than the one before
            select = ", ".join(f"addMilliseconds(timestamp, toInt64(n.number) + 1) AS {quote_identifier(c)}"
                               if c == "timestamp" else f"l.{quote_identifier(c)}" for c, _ in tiers.columns)
            store.execute(f"INSERT INTO {store.hot_table} SELECT {select} FROM {store.hot_table} AS l "  # noqa: S608
                          f"CROSS JOIN numbers({args.copies - 1}) AS n")
        # the erased user: demo records of their own, on a few days
        extra = [normalize(orjson.loads(line)) for line in demo_mix(200, start, args.days * DAY, seed=999)]
        mine = []
        for day, n in per_day.items():
            for r in extra[len(mine):len(mine) + n]:
                r["timestamp"] = start + day * DAY + 3600 * 10**9 + len(mine) * 10**9
                r["attributes"] = {**(r.get("attributes") or {}), "user_id": USER}
                mine.append(r)
        store.insert(b"\n".join(encode_row(r) for r in mine), dedup_token="bench-user")  # noqa: S106 - a dedup token
        store.optimize()
        emit(stage="load", records=unique * args.copies + len(mine), copies=args.copies, days=args.days,
             seconds=round(time.perf_counter() - t0, 1),
             hot_bytes=sum(partition_bytes(store, store.table_name).values()))

        mover = Mover(tiers, meta, clock=lambda: now, days_per_tick=1000)
        if args.tiers:
            mover.policy = RetentionPolicy.model_validate(
                {"rules": [{"name": "all", "hot": "7d", "warm": "20d", "cold": "3650d"}]})
            t0 = time.perf_counter()
            moved = mover.tick()["moved"]
            emit(stage="tiers", moved=moved, seconds=round(time.perf_counter() - t0, 1))
        before = {t: partition_bytes(store, n)
                  for t, n in (("hot", store.table_name), ("warm", tiers.warm_name))}
        jobs = DeleteJobs(mover, meta, purge_timeout_s=1800)
        t0 = time.perf_counter()
        job = jobs.submit(f"user_id:{USER}", "bench")
        jobs.wait(3600)
        total = time.perf_counter() - t0
        done = jobs.get(job["id"], raw=True)
        assert done is not None
        progress = done["progress"]
        rewritten = {}
        for tier in ("hot", "warm"):
            table = store.table_name if tier == "hot" else tiers.warm_name
            days = {name.split("/")[1].split("_")[0] for name, _ in progress.get("replaced", [])
                    if name.startswith(table + "/")}
            rewritten[tier] = {"partitions": len(days), "bytes": sum(before[tier].get(d, 0) for d in days)}
        emit(stage="delete", state=done["state"], deleted=done["deleted"], total_seconds=round(total, 1),
             step_seconds=progress.get("seconds"), rewritten=rewritten,
             masked_copies=progress.get("masked_copies", 0), error=done["error"])
    finally:
        store.close()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
