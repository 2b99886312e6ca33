"""Retention benchmark: bytes per record in hot, warm and cold, ratio to raw NDJSON, move rates,
and what the tiered read view costs a query.

Generates N records of the demo mix (ALB + NGINX lines through the parsers, app JSON records, as
bench/ingest.py does) spread over 30 days, stores them in a chDB store on a temporary folder,
then lets the real mover move them hot → warm → cold on an injectable clock:

    python bench/retention.py --records 1000000

Prints one JSON line per stage. Sizes are measured in steady state (parts merged).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from logharbor.demo.lab import Shipper, collect  # noqa: E402 - after the path tweak
from logharbor.demo.traffic import TrafficGenerator  # noqa: E402
from logharbor.record import normalize  # noqa: E402
from logharbor.server.engine.store.coldstore import LocalCold  # noqa: E402
from logharbor.server.engine.store.embedded import EmbeddedStore  # noqa: E402
from logharbor.server.engine.store.rows import encode_row  # noqa: E402
from logharbor.server.engine.store.tiers import Tiers  # noqa: E402
from logharbor.server.features.query import compile_query  # noqa: E402
from logharbor.server.features.retention.mover import Mover  # noqa: E402
from logharbor.server.features.retention.rules import RetentionPolicy  # noqa: E402
from logharbor.server.meta.db import MetaStore  # noqa: E402

DAY = 86_400 * 10**9


def emit(**fields: object) -> None:
    print(orjson.dumps(fields).decode(), flush=True)


def demo_mix(n: int, start_ns: int, span_ns: int, seed: int = 7) -> list[bytes]:
    """``n`` NDJSON lines of the demo mix with timestamps over ``span_ns`` from ``start_ns``."""
    gen = TrafficGenerator(seed)
    shipper = Shipper("http://127.0.0.1:9")  # its parsers only: nothing is sent
    out: list[bytes] = []
    stories = gen.stories(n, start_ns=start_ns, spacing_ns=max(1, span_ns // max(n // 3, 1)))
    while len(out) < n:
        chunk = [next(stories) for _ in range(200)]
        out.extend(orjson.dumps(r) for r in shipper.records(collect(chunk)))
    shipper.close()
    return out[:n]


def table_bytes(store: EmbeddedStore, table: str) -> int:
    rows = store.query("SELECT sum(bytes_on_disk) AS b FROM system.parts WHERE active "
                       "AND database = currentDatabase() AND table = {t:String}", {"t": table})
    return int(rows[0]["b"] or 0)


def timed_query(store: EmbeddedStore, table: str, q: str, since_ns: int | None, rounds: int) -> float:
    compiled = compile_query(q, table=table, time_from_ns=since_ns, time_to_ns=None, limit=100,
                             max_limit=10_000)
    store.query(compiled.sql, compiled.params)  # warm the caches
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        store.query(compiled.sql, compiled.params)
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times) * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=9, help="runs per query timing")
    parser.add_argument("--days", type=int, default=30, help="days the records are spread over (a cold file "
                        "holds one rule's day)")
    parser.add_argument("--extra-files", type=int, default=300,
                        help="small cold files added at the end to time a recent query against many files")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    args = parser.parse_args()

    now = time.time_ns()
    lines = demo_mix(args.records, now - args.days * DAY, args.days * DAY)
    raw = sum(len(line) + 1 for line in lines)
    emit(stage="generate", records=len(lines), days=args.days, raw_ndjson_bytes=raw,
         raw_bytes_per_record=round(raw / len(lines), 1))

    tmp = Path(tempfile.mkdtemp(prefix="lh-retention-bench-"))
    store = EmbeddedStore(tmp / "store")
    store.open()
    meta = MetaStore.for_data_dir(tmp)
    meta.create()
    try:
        for i in range(0, len(lines), 50_000):
            rows = b"\n".join(encode_row(normalize(orjson.loads(line))) for line in lines[i:i + 50_000])
            store.insert(rows, dedup_token=f"bench-{i}")
        store.optimize()
        hot = table_bytes(store, store.table_name)
        emit(stage="hot", records=len(lines), bytes=hot, bytes_per_record=round(hot / len(lines), 2),
             ratio_to_raw=round(raw / hot, 2))

        tiers = Tiers(store, LocalCold(tmp / "cold"))
        tiers.open()
        stats_q = "level:ERROR | stats count() by service"
        q_hot = timed_query(store, store.hot_table, stats_q, None, args.rounds)
        q_view = timed_query(store, store.table, stats_q, None, args.rounds)
        emit(stage="query_all_hot", hot_table_ms=q_hot, tiered_view_ms=q_view)

        clock = {"now": now}
        mover = Mover(tiers, meta, clock=lambda: clock["now"], days_per_tick=1000)
        mover.policy = RetentionPolicy.model_validate(
            {"rules": [{"name": "all", "hot": "1d", "warm": "365d", "cold": "3650d"}]})
        clock["now"] = now + DAY  # every record is at least a day old: warm
        t0 = time.perf_counter()
        moved = mover.tick()["moved"]
        seconds = time.perf_counter() - t0
        store.execute(f"OPTIMIZE TABLE {tiers.warm} FINAL")
        warm = table_bytes(store, tiers.warm_name)
        emit(stage="warm", records=moved, bytes=warm, bytes_per_record=round(warm / max(moved, 1), 2),
             ratio_to_raw=round(raw / max(warm, 1), 2), move_records_per_s=round(moved / seconds))

        clock["now"] = now + 400 * DAY  # 370–400 days: cold
        t0 = time.perf_counter()
        moved = mover.tick()["moved"]
        seconds = time.perf_counter() - t0
        assert tiers.cold is not None
        cold = sum(tiers.cold.size(k) for k in tiers.cold.keys())
        emit(stage="cold", records=moved, files=len(tiers.cold.keys()), bytes=cold,
             bytes_per_record=round(cold / max(moved, 1), 2), ratio_to_raw=round(raw / max(cold, 1), 2),
             move_records_per_s=round(moved / seconds), move_seconds=round(seconds, 2))

        q_cold = timed_query(store, store.table, "level:ERROR | stats count() by service", None, args.rounds)
        trace = orjson.loads(lines[len(lines) // 2]).get("trace_id", "")
        q_trace = timed_query(store, store.table, f"trace_id:{trace}", None, args.rounds)
        # fresh hot records while the cold files exist: what the cold branch costs a recent query
        fresh = demo_mix(max(1000, args.records // 10), now - 3600 * 10**9, 3600 * 10**9, seed=8)
        fresh_rows = b"\n".join(encode_row(normalize(orjson.loads(x))) for x in fresh)
        store.insert(fresh_rows, dedup_token="bench-fresh")  # noqa: S106 - a dedup token, not a secret
        since = now - 2 * 3600 * 10**9
        recent_hot = timed_query(store, store.hot_table, "level:ERROR | stats count() by service", since,
                                 args.rounds)
        recent_view = timed_query(store, store.table, "level:ERROR | stats count() by service", since,
                                  args.rounds)
        emit(stage="query_tiers", all_cold_stats_ms=q_cold, cold_trace_lookup_ms=q_trace,
             recent_stats_hot_table_ms=recent_hot, recent_stats_tiered_view_ms=recent_view,
             cold_files=len(tiers.cold.keys()))
        # many cold files: what their footers cost a query about the last hours
        for i in range(args.extra_files):
            select = (f"SELECT {tiers.export_list()} FROM ({tiers.cold_select()}) "  # noqa: S608
                      f"LIMIT 100 OFFSET {i * 100}")
            tiers.cold.write(store, f"2000-01-01/extra-{i}.parquet", select, {})
        tiers.refresh_view()
        emit(stage="query_many_cold_files", cold_files=len(tiers.cold.keys()),
             recent_stats_hot_table_ms=timed_query(store, store.hot_table, stats_q, since, args.rounds),
             recent_stats_tiered_view_ms=timed_query(store, store.table, stats_q, since, args.rounds))
    finally:
        store.close()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
