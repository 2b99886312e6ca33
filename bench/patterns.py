"""Template mining benchmark: ingest throughput with mining on and off, and the miner's memory.

    python bench/patterns.py --records 200000 --rounds 2 --miner-records 1000000

Stages (one JSON line each):

- ``ingest``: the demo mix (bench/ingest.py's generator) posted to a real server, once with
  template mining (the default) and once with ``--no-patterns``, ``--rounds`` times alternating;
  records/s counts until every record is in the store (acknowledged *and* mined and inserted),
  so the batcher's share of the cost is in it too. ``cost_pct`` compares the best round of each.
- ``encode``: the per-record cost of the masked-template id at encoding (worker side), µs.
- ``miner``: ``--miner-records`` rows of the demo mix through the batcher's miner in this
  process (as the batcher sees them: JSONEachRow payloads of 2,000 rows): rows/s, clusters, the
  snapshot's size and the growth of this process's RSS.
- ``miner_bound``: messages built so that nearly every one is a new template (random words), over
  50 services, with the default bound (2,000 masked templates per service): the miner stays at its
  bound (evictions count up); rows/s is the worst case (every row new).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import demo_mix, free_port, store_rows  # noqa: E402 - after the path tweak
from logharbor.record import normalize  # noqa: E402
from logharbor.server.engine.mining import PatternMiner  # noqa: E402
from logharbor.server.engine.store import rows as rows_mod  # noqa: E402


def emit(**fields: object) -> None:
    print(orjson.dumps(fields).decode(), flush=True)


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return -1.0


def load_avg() -> float:
    return round(os.getloadavg()[0], 2)


def _post_all(url: str, key: str, bodies: list[bytes], clients: int) -> None:
    from concurrent.futures import ThreadPoolExecutor

    headers = {"content-type": "application/x-ndjson", "authorization": f"Bearer {key}"}

    def send(share: list[bytes]) -> None:
        with httpx.Client(base_url=url, timeout=300, headers=headers) as c:
            for body in share:
                while True:
                    r = c.post("/api/v1/logs", content=body)
                    if r.status_code == 429:
                        time.sleep(float(r.headers.get("retry-after", "1")))
                        continue
                    r.raise_for_status()
                    break

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(send, [bodies[i::clients] for i in range(clients)]))


def ingest_round(bodies: list[bytes], records: int, clients: int, mining: bool) -> dict[str, object]:
    data_dir = Path(tempfile.mkdtemp(prefix="lh-bench-patterns-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "logharbor.cli.main", "server", "--data-dir", str(data_dir),
            "--port", str(port), "--log-level", "warning", "--batch-max-age", "0.5"]
    if not mining:
        args.append("--no-patterns")
    server = subprocess.Popen(args, cwd=ROOT)
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        key = (data_dir / "admin.key").read_text().strip()
        load = load_avg()
        t0 = time.perf_counter()
        _post_all(url, key, bodies, clients)
        acked = time.perf_counter() - t0
        while store_rows(url, key) < records and time.perf_counter() - t0 < 900:
            time.sleep(0.05)
        stored = time.perf_counter() - t0
        patterns = None
        if mining:
            r = httpx.post(url + "/api/v1/query", json={"q": "* | patterns", "limit": 1000},
                           headers={"authorization": f"Bearer {key}"}, timeout=120)
            patterns = len(r.json()["rows"])
        return {"mining": mining, "records": records, "ack_records_per_s": round(records / acked),
                "records_per_s": round(records / stored), "seconds": round(stored, 2),
                "patterns": patterns, "load_before": load, "load_after": load_avg()}
    finally:
        server.terminate()
        server.wait(timeout=120)
        shutil.rmtree(data_dir, ignore_errors=True)


def encode_cost(lines: list[bytes]) -> dict[str, object]:
    now = time.time_ns()
    recs = [normalize(orjson.loads(line), received_ns=now) for line in lines[:100_000]]
    best = {}
    for enabled in (False, True) * 5:  # alternating, best of five: the machine is shared
        rows_mod.set_patterns(enabled)
        rows_mod._SIDS.clear()
        t = time.perf_counter()
        for r in recs:
            rows_mod.encode_row(r)
        us = (time.perf_counter() - t) / len(recs) * 1e6
        best[enabled] = min(best.get(enabled, us), us)
    rows_mod.set_patterns(True)
    return {"us_per_record_off": round(best[False], 2), "us_per_record_on": round(best[True], 2),
            "added_us": round(best[True] - best[False], 2)}


def miner_run(payloads: list[bytes], **bounds: int) -> dict[str, object]:
    folder = Path(tempfile.mkdtemp(prefix="lh-bench-miner-"))
    before = rss_mib()
    miner = PatternMiner(folder, **bounds)
    miner.load()
    rows = 0
    t0 = time.perf_counter()
    for payload in payloads:
        miner.process(payload)
        miner.commit()
        rows += payload.count(b"\n") + 1
    elapsed = time.perf_counter() - t0
    miner.compact()
    snapshot = miner.snapshot_path.stat().st_size
    after = rss_mib()
    out = {"rows": rows, "rows_per_s": round(rows / elapsed), **miner.stats(),
           "snapshot_bytes": snapshot, "rss_growth_mib": round(after - before, 1)}
    miner.close()
    shutil.rmtree(folder, ignore_errors=True)
    return out


def encoded_payloads(lines: list[bytes], per: int = 2000) -> list[bytes]:
    now = time.time_ns()
    rows = [rows_mod.encode_row(normalize(orjson.loads(line), received_ns=now)) for line in lines]
    return [b"\n".join(rows[i:i + per]) for i in range(0, len(rows), per)]


def bound_payloads(n: int, seed: int = 3) -> list[bytes]:
    rng = random.Random(seed)
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6)) for _ in range(5000)]
    now = time.time_ns()
    rows = []
    for i in range(n):
        msg = " ".join(rng.choice(words) for _ in range(rng.randrange(3, 9)))
        rows.append(rows_mod.encode_row(normalize({"service": f"svc-{i % 50}", "message": msg},
                                                  received_ns=now)))
    return [b"\n".join(rows[i:i + 2000]) for i in range(0, len(rows), 2000)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=200_000, help="records per ingest round")
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=2, help="ingest rounds per mode (on/off alternate)")
    ap.add_argument("--miner-records", type=int, default=1_000_000)
    ap.add_argument("--bound-records", type=int, default=200_000)
    args = ap.parse_args()

    t0 = time.perf_counter()
    lines = demo_mix(max(args.records, min(args.miner_records, 1_000_000)))
    emit(stage="generate", records=len(lines), seconds=round(time.perf_counter() - t0, 1),
         cpus=os.cpu_count(), load=load_avg())

    emit(stage="encode", **encode_cost(lines))

    bodies = [b"\n".join(lines[i:i + args.batch]) for i in range(0, args.records, args.batch)]
    best: dict[bool, int] = {}
    for _ in range(args.rounds):
        for mining in (True, False):
            result = ingest_round(bodies, args.records, args.clients, mining)
            emit(stage="ingest", **result)
            best[mining] = max(best.get(mining, 0), int(result["records_per_s"]))  # type: ignore[call-overload]
    cost = (best[False] - best[True]) / best[False] * 100 if best[False] else 0.0
    emit(stage="ingest_summary", best_on=best[True], best_off=best[False], cost_pct=round(cost, 1),
         target_pct=20)

    miner_lines = lines[: args.miner_records]
    while len(miner_lines) < args.miner_records:
        miner_lines += lines[: args.miner_records - len(miner_lines)]
    emit(stage="miner", mix="demo", **miner_run(encoded_payloads(miner_lines)))
    emit(stage="miner_bound", mix="random words, 50 services",
         **miner_run(bound_payloads(args.bound_records), max_sids=2_000))


if __name__ == "__main__":
    main()
