"""Query benchmark: latency of typical searches and aggregations, and ripgrep side by side.

Generates N records of the demo mix (ALB + NGINX + app, as bench/ingest.py does), writes them as
raw NDJSON (what ripgrep searches) and loads them into an embedded chDB store (what logharbor
searches), merges the parts, then prints one JSON line per query with p50/p99 over ``--runs``
runs (compile + engine, warm cache; ``min_ms`` too, the figure least moved by other load on
the machine), and one per ripgrep search of the same needle:

    python bench/query.py --records 1000000 --runs 30

Needles come from the data: the trace id of the record in the middle, the rare word
``unhandled`` (in "unhandled exception in POST /api/orders", about 0.07% of records), the
phrase "payment declined".
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import demo_mix  # noqa: E402 - after the path tweak
from logharbor.record import normalize  # noqa: E402
from logharbor.server.engine.store.embedded import EmbeddedStore  # noqa: E402
from logharbor.server.engine.store.rows import encode_row  # noqa: E402
from logharbor.server.features.query import compile_query  # noqa: E402

RARE_WORD = "unhandled"
PHRASE = "payment declined"


def emit(**fields: object) -> None:
    print(orjson.dumps(fields).decode(), flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def generate_and_load(store: EmbeddedStore, n: int, raw: Path, chunk: int) -> tuple[str, float]:
    """Write the raw NDJSON file and insert the same records, one chunk at a time (bounded memory).

    Each chunk is the demo mix of one simulated hour with its own seed, so chunks interleave in
    time like traffic from several instances. Returns the trace id of the middle record.
    """
    gen_s = encode_s = insert_s = 0.0
    received = time.time_ns()
    trace_id = ""
    with raw.open("wb") as out:
        for i, start in enumerate(range(0, n, chunk)):
            t0 = time.perf_counter()
            lines = demo_mix(min(chunk, n - start), seed=7 + i)
            t1 = time.perf_counter()
            out.write(b"\n".join(lines) + b"\n")
            rows = b"\n".join(encode_row(normalize(orjson.loads(line), received_ns=received))
                              for line in lines)
            t2 = time.perf_counter()
            store.insert(rows, dedup_token=f"bench-{i}")
            t3 = time.perf_counter()
            gen_s, encode_s, insert_s = gen_s + t1 - t0, encode_s + t2 - t1, insert_s + t3 - t2
            if not trace_id and start + len(lines) > n // 2:
                for line in lines[n // 2 - start:]:
                    trace_id = orjson.loads(line).get("trace_id") or ""
                    if trace_id:
                        break
    emit(bench="query", step="generate", records=n, raw_bytes=raw.stat().st_size,
         generate_s=round(gen_s, 2), normalize_encode_s=round(encode_s, 2))
    return trace_id, insert_s


def load_stats(store: EmbeddedStore, n: int, insert_s: float) -> None:
    t0 = time.perf_counter()
    store.optimize()
    optimize_s = time.perf_counter() - t0
    stats = store.stats()
    emit(bench="query", step="load", records=n, rows=stats.rows, insert_s=round(insert_s, 2),
         insert_records_per_s=round(n / insert_s), optimize_s=round(optimize_s, 2),
         bytes_on_disk=stats.bytes_on_disk)
    # what the attributes cost on disk: the JSON column, and the exact copy of what it would alter
    columns = store.query(
        "SELECT column, sum(column_data_compressed_bytes) AS bytes FROM system.parts_columns "
        "WHERE active AND database = currentDatabase() AND table = {t:String} "
        "AND column IN ('attributes', 'attributes_exact') GROUP BY column", {"t": store.table_name})
    exact = [{"n": 0}]
    if any(c["column"] == "attributes_exact" for c in columns):
        exact = store.query(f"SELECT countIf(attributes_exact != '') AS n FROM {store.table}", {})  # noqa: S608
    emit(bench="query", step="attributes", records=n, rows_with_exact_copy=int(exact[0]["n"]),
         **{f"{c['column']}_bytes": int(c["bytes"]) for c in columns})


def time_query(store: EmbeddedStore, name: str, q: str, runs: int, n: int) -> dict[str, float]:
    compiled = compile_query(q, table=store.table, time_from_ns=None, time_to_ns=None, limit=None,
                             max_limit=10_000)
    rows = store.query(compiled.sql, compiled.params)  # warm-up
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        compiled = compile_query(q, table=store.table, time_from_ns=None, time_to_ns=None, limit=None,
                                 max_limit=10_000)
        rows = store.query(compiled.sql, compiled.params)
        samples.append((time.perf_counter() - t0) * 1000)
    result = {"p50_ms": round(statistics.median(samples), 2), "p99_ms": round(percentile(samples, 0.99), 2),
              "min_ms": round(min(samples), 2)}
    emit(bench="query", query=name, q=q, records=n, runs=runs, rows=len(rows), **result)
    return result


def time_ripgrep(name: str, needle: str, raw: Path, runs: int, n: int) -> dict[str, float] | None:
    rg = shutil.which("rg")
    if rg is None:
        emit(bench="ripgrep", query=name, skipped="rg not found (Debian package ripgrep)")
        return None
    cmd = [rg, "--fixed-strings", "--count", needle, str(raw)]
    subprocess.run(cmd, capture_output=True, check=False)  # warm-up (page cache)
    samples = []
    count = ""
    for _ in range(runs):
        t0 = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, check=False)
        samples.append((time.perf_counter() - t0) * 1000)
        count = done.stdout.decode().strip()
    result = {"p50_ms": round(statistics.median(samples), 2), "p99_ms": round(percentile(samples, 0.99), 2),
              "min_ms": round(min(samples), 2)}
    emit(bench="ripgrep", query=name, needle=needle, records=n, runs=runs, matching_lines=count, **result)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--rg-runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=100_000, help="records per chunk and insert")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--only", default="", help="run only the queries whose name contains this")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lh-bench-query-"))
    store = EmbeddedStore(work / "store")
    try:
        raw = work / "raw.ndjson"
        store.open()
        trace_id, insert_s = generate_and_load(store, args.records, raw, args.batch)
        load_stats(store, args.records, insert_s)
        n = args.records
        queries = [
            ("trace-id lookup", f"trace_id:{trace_id}"),
            ("rare word", RARE_WORD),
            ("phrase", f'"{PHRASE}"'),
            ("status>=500 and path prefix", "status:>=500 AND path:/api/*"),
            ("stats count by service, level", "* | stats count() by service, level"),
            ("stats p99 duration by path", "* | stats p99(duration_ms) by path"),
            ("timechart 1m count by level", "* | timechart span=1m count() by level"),
            # the same needles returning three columns instead of whole records (JSON attributes)
            ("trace-id lookup, 3 fields", f"trace_id:{trace_id} | fields timestamp, service, message"),
            ("rare word, 3 fields", f"{RARE_WORD} | fields timestamp, service, message"),
            # attribute paths (the JSON column): equality, numbers, stats by a value, a dotted
            # name (error.type: two spellings, the nested path and a literal "error.type" key)
            ("attribute equality", "user_id:u-1234"),
            ("attribute number compare", "target_processing_ms:>50 | stats count()"),
            ("stats count by attribute", "* | stats count() by target_status_code"),
            ("stats count by attribute (app)", "* | stats count() by logger"),
            ("dotted attribute equality", "error.type:ConnectionResetError"),
            ("stats count by dotted attribute", "* | stats count() by error.type"),
        ]
        if args.only:
            queries = [q for q in queries if args.only in q[0]]
        results = {name: time_query(store, name, q, args.runs, n) for name, q in queries}
        for name, needle in (("trace-id lookup", trace_id), ("rare word", RARE_WORD)):
            if name not in results:
                continue
            rg = time_ripgrep(name, needle, raw, args.rg_runs, n)
            if rg is not None:
                emit(bench="query-vs-ripgrep", query=name, records=n,
                     speedup_p50=round(rg["p50_ms"] / max(results[name]["p50_ms"], 1e-6), 1))
    finally:
        store.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
