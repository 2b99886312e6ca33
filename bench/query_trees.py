"""The query benchmark against several source trees side by side: ``bench/query.py --compare-tree``.

One worker process per source tree (``LH_BENCH_SRC=<tree>/src``: chDB is one engine per process,
and each tree brings its own schema.sql, encoder and query compiler) loads the same raw NDJSON
file into its own embedded store, merges it, and answers the same compiled queries; this process
interleaves the runs (one run per tree per round, the order reversed every other round) and runs
ripgrep over the same raw file in the same rounds for the trace-id and rare-word needles. Per tree:
insert and OPTIMIZE CPU (the worker's process CPU: chDB runs in it), bytes on disk, and per query
p50/p99/min wall, CPU per query, rows returned and the load average.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, os.environ.get("LH_BENCH_SRC") or str(ROOT / "src"))


def emit(**fields: object) -> None:
    print(orjson.dumps(fields).decode(), flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def search_options(store: Any) -> dict[str, Any]:
    """What the server's search passes the compiler besides the table, for a tree that has it:
    the free-text values table (store/freetext.py), made complete as a server's start makes it
    (its tiers read the stored rows' values in). Empty for a tree without one."""
    name = getattr(store, "free_text_name", None)
    if not name:
        return {}
    from logharbor.server.engine.store.freetext import fill, is_complete
    from logharbor.server.engine.store.sqlsafe import quote_identifier

    if not is_complete(store.query, name):
        fill(store.execute, name, [store.table])
    return {"free_text_table": quote_identifier(name)}


def worker(store_dir: str, raw: str, n: int, batch: int) -> None:
    """Load ``n`` lines of ``raw`` with this tree's code, then answer one query per stdin line."""
    from logharbor.record import normalize
    from logharbor.server.engine.store.embedded import EmbeddedStore
    from logharbor.server.engine.store.rows import encode_row
    from logharbor.server.features.query import compile_query

    out = sys.stdout
    store = EmbeddedStore(Path(store_dir))
    store.open()
    received = time.time_ns()
    encode_s = insert_cpu = 0.0
    with open(raw, "rb") as f:
        for i in range(0, n, batch):
            lines = [f.readline() for _ in range(min(batch, n - i))]
            t0 = time.process_time()
            rows = b"\n".join(encode_row(normalize(orjson.loads(line), received_ns=received))
                               for line in lines)
            t1 = time.process_time()
            store.insert(rows, dedup_token=f"bench-{i}")
            encode_s, insert_cpu = encode_s + t1 - t0, insert_cpu + time.process_time() - t1
    t0 = time.process_time()
    store.optimize()
    optimize_cpu = time.process_time() - t0
    stats = store.stats()
    columns = store.query(
        "SELECT column, sum(column_data_compressed_bytes) AS bytes FROM system.parts_columns "
        "WHERE active AND database = currentDatabase() AND table = {t:String} GROUP BY column",
        {"t": store.table_name})
    attr_bytes = sum(int(c["bytes"]) for c in columns if str(c["column"]).startswith("attr"))
    out.write(orjson.dumps({
        "rows": stats.rows, "bytes_on_disk": stats.bytes_on_disk, "attribute_columns_bytes": attr_bytes,
        "encode_cpu_us_per_record": round(encode_s / n * 1e6, 2),
        "insert_cpu_us_per_record": round(insert_cpu / n * 1e6, 2),
        "optimize_cpu_us_per_record": round(optimize_cpu / n * 1e6, 2)}).decode() + "\n")
    out.flush()
    options = search_options(store)
    for line in sys.stdin:
        q = orjson.loads(line)["q"]
        t0, c0 = time.perf_counter(), time.process_time()
        compiled = compile_query(q, table=store.table, time_from_ns=None, time_to_ns=None, limit=None,
                                 max_limit=10_000, **options)
        rows = store.query(compiled.sql, compiled.params)
        reply = {"ms": (time.perf_counter() - t0) * 1000, "cpu_ms": (time.process_time() - c0) * 1000,
                 "rows": len(rows)}
        out.write(orjson.dumps(reply).decode() + "\n")
        out.flush()
    store.close()


class Tree:
    """A worker process holding one tree's store."""

    def __init__(self, tree: Path, name: str, work: Path, raw: Path, n: int, batch: int) -> None:
        self.name = name
        env = dict(os.environ, LH_BENCH_SRC=str(tree / "src"), PYTHONPATH=str(tree / "src"))
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", str(work / f"store-{name}"), str(raw), str(n),
             str(batch)],
            cwd=tree, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

    def reply(self) -> dict[str, float]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"{self.name}: the worker exited ({self.proc.wait()})")
        return orjson.loads(line)

    def ask(self, q: str) -> dict[str, float]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(orjson.dumps({"q": q}) + b"\n")
        self.proc.stdin.flush()
        return self.reply()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=120)


def ripgrep_once(needle: str, raw: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(["rg", "--fixed-strings", "--count", needle, str(raw)], capture_output=True, check=False)
    return (time.perf_counter() - t0) * 1000


def compare(trees: list[Path], work: Path, raw: Path, n: int, batch: int, runs: int,
            queries: list[tuple[str, str]], needles: dict[str, str]) -> None:
    """Load ``raw`` into one store per tree (one after the other, so each load has the machine's
    cores to itself), then time ``queries`` interleaved across trees, ripgrep beside ``needles``."""
    workers = []
    for i, tree in enumerate(trees):
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        name = tree.name if [t.name for t in trees].count(tree.name) == 1 else f"{tree.name}-{i}"
        w = Tree(tree, name, work, raw, n, batch)
        loaded = w.reply()
        emit(bench="query-trees", step="load", tree=w.name, records=n, raw_bytes=raw.stat().st_size,
             seconds=round(time.perf_counter() - t0, 1), load_before=round(load_before, 2),
             load_after=round(os.getloadavg()[0], 2),
             raw_over_disk=round(raw.stat().st_size / int(loaded["bytes_on_disk"]), 2), **loaded)
        workers.append(w)
    rg = bool(subprocess.run(["which", "rg"], capture_output=True, check=False).returncode == 0)
    try:
        for name, q in queries:
            for w in workers:
                w.ask(q)  # warm-up
            needle = needles.get(name) if rg else None
            if needle:
                ripgrep_once(needle, raw)
            wall: dict[str, list[float]] = {w.name: [] for w in workers}
            cpu: dict[str, list[float]] = {w.name: [] for w in workers}
            rows: dict[str, set[int]] = {w.name: set() for w in workers}
            rg_ms: list[float] = []
            load_before = os.getloadavg()[0]
            for run in range(runs):
                order = workers if run % 2 == 0 else list(reversed(workers))
                if needle and run % 2 == 1:
                    rg_ms.append(ripgrep_once(needle, raw))
                for w in order:
                    r = w.ask(q)
                    wall[w.name].append(r["ms"])
                    cpu[w.name].append(r["cpu_ms"])
                    rows[w.name].add(int(r["rows"]))
                if needle and run % 2 == 0:
                    rg_ms.append(ripgrep_once(needle, raw))
            load = {"load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}
            base = statistics.median(wall[workers[0].name])
            for w in workers:
                p50 = statistics.median(wall[w.name])
                emit(bench="query-trees", query=name, q=q, tree=w.name, records=n, runs=runs,
                     rows=sorted(rows[w.name]), p50_ms=round(p50, 2),
                     p99_ms=round(percentile(wall[w.name], 0.99), 2), min_ms=round(min(wall[w.name]), 2),
                     cpu_ms=round(statistics.fmean(cpu[w.name]), 2),
                     ratio_to_first=round(p50 / max(base, 1e-9), 2), **load)
            if rg_ms:
                p50_rg = statistics.median(rg_ms)
                emit(bench="query-trees", query=name, tree="ripgrep", needle=needle, records=n,
                     runs=len(rg_ms),
                     p50_ms=round(p50_rg, 2), p99_ms=round(percentile(rg_ms, 0.99), 2),
                     min_ms=round(min(rg_ms), 2),
                     **{f"speedup_{w.name}": round(p50_rg / max(statistics.median(wall[w.name]), 1e-9), 1)
                        for w in workers}, **load)
    finally:
        for w in workers:
            w.close()


if __name__ == "__main__" and len(sys.argv) == 6 and sys.argv[1] == "--worker":
    worker(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
