"""WAL benchmark: what giving space back as soon as records are stored costs on ingest.

Several threads submit entries as fast as their fsync'd acknowledgements allow while a reader
thread plays the batcher (read everything durable, "store" it, release it) every ``--batch-ms``.
The same run is made with reclaim on (the default: the live segment is rolled once 1 MiB of it is
stored) and off (segments freed only when sealed at ``--segment-mb``), alternating, on the real
disk under ``--dir``. One JSON line per run: entries/s, acknowledgement latency p50/p99, rolls,
and the WAL's peak and final size on disk.

    python bench/wal.py --seconds 10 --rounds 3
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from logharbor.server.engine.wal import WriteAheadLog  # noqa: E402 - after the path tweak


def run(directory: Path, *, reclaim: bool, seconds: float, writers: int, size: int, batch_ms: int,
        segment_mb: int, reclaim_interval: float) -> dict[str, object]:
    wal = WriteAheadLog(directory, segment_bytes=segment_mb << 20, max_bytes=8 << 30,
                        reclaim_bytes=(1 << 20) if reclaim else None, reclaim_interval_s=reclaim_interval)
    wal.open()
    stop = threading.Event()
    latencies: list[float] = []
    peak = [0]
    payload = b"x" * size

    def writer() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            wal.submit(payload).result()
            latencies.append(time.perf_counter() - t0)

    def batcher() -> None:
        pos = wal.start_position()
        while not stop.wait(batch_ms / 1000):
            got = wal.read(pos, 1 << 30)
            pos = got.end
            wal.release(pos)
            peak[0] = max(peak[0], wal.disk_bytes())

    threads = [threading.Thread(target=writer) for _ in range(writers)] + [threading.Thread(target=batcher)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    latencies.sort()
    result = {"reclaim": reclaim, "entries_per_s": round(len(latencies) / elapsed),
              "p50_ms": round(latencies[len(latencies) // 2] * 1000, 2),
              "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
              "rolls": wal.rolls, "fsyncs": wal.fsyncs, "wal_peak_mib": round(peak[0] / 2**20, 1),
              "wal_final_mib": round(wal.disk_bytes() / 2**20, 2)}
    wal.close()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--writers", type=int, default=8)
    ap.add_argument("--size", type=int, default=16_384, help="bytes per entry (one ingest request)")
    ap.add_argument("--batch-ms", type=int, default=1000, help="how often the 'batcher' releases")
    ap.add_argument("--segment-mb", type=int, default=64)
    ap.add_argument("--reclaim-interval", type=float, default=1.0, help="seconds between reclaiming rolls")
    ap.add_argument("--dir", type=Path, default=ROOT, help="a directory on the disk to measure")
    args = ap.parse_args()
    for _ in range(args.rounds):
        for reclaim in (False, True):
            directory = Path(tempfile.mkdtemp(prefix="lh-bench-wal-", dir=args.dir))
            try:
                line = run(directory, reclaim=reclaim, seconds=args.seconds, writers=args.writers,
                           size=args.size, batch_ms=args.batch_ms, segment_mb=args.segment_mb,
                           reclaim_interval=args.reclaim_interval)
            finally:
                shutil.rmtree(directory, ignore_errors=True)
            print(orjson.dumps(line).decode(), flush=True)


if __name__ == "__main__":
    main()
