"""Search page benchmark (issue #25): what a search costs the person waiting for it.

Two measurements, each printing JSON lines (with the machine's load average, since other work on
the two cores skews every latency):

``--mode page`` (default 1M records): a real server over demo-mix records (ALB + NGINX + app, as
bench/query.py makes them), and the three requests the search page sends when a search runs —
the first 100 rows, the histogram (``timechart … by level``) and the field sidebar
(``GET /api/v1/fields``) — sent together as the page does. Printed per query: the time to the first
rows and to the sidebar's values (client side, over HTTP; p50/p90 over ``--runs``), the first rows
again with nothing else in flight (``rows_alone_*``, and the engine's own time and rows read for
them: ``rows_server_ms``, ``rows_scanned``), and beside
them the **baseline**: the sidebar computed the obvious way, one exact ``| top 5 <field>`` query
per field over the whole match (what the endpoint's single pass and sample replace)::

    python bench/search.py --mode page --records 1000000 --runs 10

``--mode free-text`` (default 10M records, in process): the cost of case-insensitive words. The
table gets both text indexes — today's on ``lowerUTF8(message)`` and the case-sensitive one on
``message`` that searches used before — and each needle is timed both ways: the query as the
compiler writes it now (any case, a bare word also against the short fields) against the old
condition (``hasAllTokens(message, w)`` and ``position``). Also printed: each index's size on disk
and the time to build it over the whole table (``MATERIALIZE INDEX``), the insert-side cost::

    python bench/search.py --mode free-text --records 10000000 --runs 20

The figures are in bench/README.md; ``bench/search-baseline.jsonl`` holds the lines of the runs
reported there, to compare a later run against.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import demo_mix  # noqa: E402 - after the path tweak
from logharbor.record import normalize  # noqa: E402
from logharbor.server.engine.store.embedded import EmbeddedStore  # noqa: E402
from logharbor.server.engine.store.rows import encode_row  # noqa: E402
from logharbor.server.features.query import compile_query  # noqa: E402
from tail import start_server  # noqa: E402

PAGE_QUERIES = [("all", "*"), ("filter", "service:checkout AND level:ERROR"), ("word", "declined"),
                ("attribute", "_exists_:user_id")]
#: needles of the free-text comparison: (name, query text, the old condition's words/phrase)
WORDS = [("rare word", "unhandled"), ("common word", "GET"), ("phrase", '"payment declined"'),
         ("word no record has", "zzzqqq"), ("capitalised word", "Payment")]


def emit(**fields: object) -> None:
    fields["loadavg_1m"] = round(os.getloadavg()[0], 2)
    print(orjson.dumps(fields).decode(), flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))], 1)


def load(store: EmbeddedStore, n: int, chunk: int = 100_000) -> tuple[int, int]:
    """Demo-mix records in one simulated hour per chunk; returns the time extent (ns)."""
    t0 = time.perf_counter()
    received = time.time_ns()
    lo, hi = 2**63, 0
    for i, start in enumerate(range(0, n, chunk)):
        lines = demo_mix(min(chunk, n - start), seed=7 + i)
        records = [normalize(orjson.loads(line), received_ns=received) for line in lines]
        lo = min(lo, *(r["timestamp"] for r in records))
        hi = max(hi, *(r["timestamp"] for r in records))
        store.insert(b"\n".join(encode_row(r) for r in records), dedup_token=f"bench-search-{i}")
    loaded = time.perf_counter() - t0
    store.optimize()
    emit(bench="search", step="load", records=n, load_s=round(loaded, 1),
         merge_s=round(time.perf_counter() - t0 - loaded, 1), bytes_on_disk=store.stats().bytes_on_disk)
    return lo, hi


# ------------------------------------------------------------------------------------ page mode

def page_mode(args: argparse.Namespace, work: Path) -> None:
    store = EmbeddedStore(work / "store")
    store.open()
    lo, hi = load(store, args.records)
    store.close()
    server, url, key = start_server(work)
    window = {"from": _iso(lo), "to": _iso(hi + 1)}
    try:
        with httpx.Client(base_url=url, headers={"authorization": f"Bearer {key}"}, timeout=120) as client:
            for name, q in PAGE_QUERIES:
                page_query(client, name, q, window, args.runs)
    finally:
        server.terminate()
        server.wait(timeout=120)


def _iso(ns: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"


def page_query(client: httpx.Client, name: str, q: str, window: dict[str, str], runs: int) -> None:
    engine: list[dict[str, Any]] = []  # the rows query's own stats (server side), last run

    def rows() -> float:
        t0 = time.perf_counter()
        answer = client.post("/api/v1/query", json={"q": q, "limit": 100, **window})
        answer.raise_for_status()
        engine[:] = [answer.json().get("stats") or {}]
        return (time.perf_counter() - t0) * 1000

    def histogram() -> float:
        t0 = time.perf_counter()
        chart = {"q": f"{q} | timechart span=1m count() by level", **window}
        client.post("/api/v1/query", json=chart).raise_for_status()
        return (time.perf_counter() - t0) * 1000

    def sidebar() -> tuple[float, dict[str, Any]]:
        t0 = time.perf_counter()
        answer = client.get("/api/v1/fields", params={"q": q, **window})
        answer.raise_for_status()
        return (time.perf_counter() - t0) * 1000, answer.json()

    first_rows, hist, values = [], [], []
    fields: dict[str, Any] = {}
    with ThreadPoolExecutor(3) as pool:
        for i in range(runs + 1):  # the first run warms the caches and is not counted
            jobs = [pool.submit(rows), pool.submit(histogram), pool.submit(sidebar)]
            r, h, (s, fields) = jobs[0].result(), jobs[1].result(), jobs[2].result()
            if i:
                first_rows.append(r)
                hist.append(h)
                values.append(s)
    # the first rows alone (nothing else in flight): how much of the wait above is the three
    # requests sharing the store's read slots and the two cores
    alone = [rows() for _ in range(runs)]
    emit(bench="search-page", query=name, q=q, runs=runs, matches=fields.get("total"),
         sampled=fields.get("sampled"), fields=len(fields.get("fields", [])),
         first_rows_p50_ms=pct(first_rows, 0.5), first_rows_p90_ms=pct(first_rows, 0.9),
         histogram_p50_ms=pct(hist, 0.5),
         sidebar_p50_ms=pct(values, 0.5), sidebar_p90_ms=pct(values, 0.9),
         sidebar_server_ms=fields.get("elapsed_ms"),
         rows_alone_p50_ms=pct(alone, 0.5), rows_alone_p90_ms=pct(alone, 0.9),
         rows_server_ms=engine[0].get("elapsed_ms"), rows_scanned=engine[0].get("rows_scanned"))
    # the baseline: each field's exact top 5 over the whole match, one query per field
    names = [f["name"] for f in fields.get("fields", [])]
    t0 = time.perf_counter()
    for field in names:
        client.post("/api/v1/query", json={"q": f"{q} | top 5 {field}", **window}).raise_for_status()
    emit(bench="search-page-baseline", query=name, q=q, fields=len(names),
         exact_top5_per_field_ms=round((time.perf_counter() - t0) * 1000, 1))


# ------------------------------------------------------------------------------- free-text mode

OLD_INDEX = "idx_message message TYPE text(tokenizer = splitByNonAlpha)"


def free_text_mode(args: argparse.Namespace, work: Path) -> None:
    store = EmbeddedStore(work / "store")
    store.open()
    load(store, args.records)
    # the index searches used before, beside today's: both built over the whole table
    store.execute(f"ALTER TABLE {store.table} ADD INDEX IF NOT EXISTS {OLD_INDEX}")
    for index in ("idx_message", "idx_message_lower"):
        t0 = time.perf_counter()
        store.execute(f"ALTER TABLE {store.table} MATERIALIZE INDEX {index} SETTINGS mutations_sync = 2")
        built = time.perf_counter() - t0
        size = store.query("SELECT data_compressed_bytes AS c, data_uncompressed_bytes AS u "
                           "FROM system.data_skipping_indices WHERE table = {t:String} AND name = {n:String}",
                           {"t": store.table_name, "n": index})
        emit(bench="search-free-text", step="index", index=index, build_s=round(built, 1),
             compressed_bytes=int(size[0]["c"]) if size else None,
             uncompressed_bytes=int(size[0]["u"]) if size else None)
    for name, q in WORDS:
        now = time_sql(store, compiled(store, q), args.runs)
        old = time_sql(store, old_sql(store, q), args.runs)
        emit(bench="search-free-text", needle=name, q=q, records=args.records, runs=args.runs,
             now_rows=now["rows"], now_p50_ms=now["p50"], now_min_ms=now["min"],
             case_sensitive_rows=old["rows"], case_sensitive_p50_ms=old["p50"],
             case_sensitive_min_ms=old["min"])
    store.close()


def compiled(store: EmbeddedStore, q: str) -> tuple[str, dict[str, object]]:
    c = compile_query(q, table=store.table, time_from_ns=None, time_to_ns=None, limit=100, max_limit=10_000)
    return c.sql, c.params


def old_sql(store: EmbeddedStore, q: str) -> tuple[str, dict[str, object]]:
    """What the compiler wrote before (a case-sensitive message search), on the same SELECT."""
    sql, _ = compiled(store, "*")
    value = q.strip('"')
    words = [w for w in value.replace("-", " ").split() if w]
    cond = "hasAllTokens(`message`, {w:String})" + (" AND position(`message`, {w:String}) > 0"
                                                        if len(words) > 1 or q.startswith('"') else "")
    return sql.replace("FROM `logs`", f"FROM `logs` WHERE {cond}", 1), {"w": value}


def time_sql(store: EmbeddedStore, query: tuple[str, dict[str, object]], runs: int) -> dict[str, Any]:
    sql, params = query
    rows = store.query(sql, params)
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        store.query(sql, params)
        samples.append((time.perf_counter() - t0) * 1000)
    return {"rows": len(rows), "p50": round(statistics.median(samples), 1), "min": round(min(samples), 1)}


# ------------------------------------------------------------------------------------ tiers mode

def tiers_mode(args: argparse.Namespace, work: Path) -> None:
    """The first page through the retention tiers' read view, in process: the view of the hot
    table alone (warm and cold empty, what ``Tiers.refresh_view`` exposes then) against the
    ``UNION ALL`` of every tier it exposed before; the rows must be the same."""
    from logharbor.server.engine.store.tiers import Tiers

    store = EmbeddedStore(work / "store")
    store.open()
    load(store, args.records)
    tiers = Tiers(store, None)
    tiers.open()
    for name, q in PAGE_QUERIES:
        compiled = compile_query(q, table=store.table, time_from_ns=None, time_to_ns=None, limit=100,
                                 max_limit=100)
        answers: dict[str, list[dict[str, Any]]] = {}
        for view in ("union_all", "hot_alone"):
            if view == "union_all":
                tiers._expose_all_tiers(False)
            else:
                tiers.refresh_view()
            times, stats = [], {}
            for _ in range(args.runs + 1):  # the first run warms the caches and is not counted
                t0 = time.perf_counter()
                rows, stats = store.query_with_stats(compiled.sql, compiled.params)
                times.append((time.perf_counter() - t0) * 1000)
            answers[view] = rows
            emit(bench="search-tiers", query=name, view=view, rows=len(rows), p50_ms=pct(times[1:], 0.5),
                 rows_read=stats.get("rows_read"), bytes_read=stats.get("bytes_read"))
        emit(bench="search-tiers", query=name, same_rows=answers["union_all"] == answers["hot_alone"])
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=("page", "free-text", "tiers"), default="page")
    parser.add_argument("--records", type=int, default=None,
                        help="default 1M (page, tiers) or 10M (free-text)")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if args.records is None:
        args.records = 10_000_000 if args.mode == "free-text" else 1_000_000
    work = Path(tempfile.mkdtemp(prefix="lh-bench-search-"))
    try:
        {"page": page_mode, "free-text": free_text_mode, "tiers": tiers_mode}[args.mode](args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            subprocess.run(["du", "-sh", str(work)], check=False)


if __name__ == "__main__":
    main()
