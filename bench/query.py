"""Query benchmark: latency of typical searches and aggregations, and ripgrep side by side.

Generates N records of the demo mix (ALB + NGINX + app, as bench/ingest.py does), writes them as
raw NDJSON (what ripgrep searches) and loads them into an embedded chDB store (what logharbor
searches), merges the parts, then prints one JSON line per query with p50/p99 over ``--runs``
runs (compile + engine, warm cache; ``min_ms`` too, the figure least moved by other load on
the machine), and one per ripgrep search of the same needle:

    python bench/query.py --records 1000000 --runs 30

``--compare-tree DIR`` (repeatable) loads the same raw file with each source tree's code as well,
one worker process per tree, and interleaves the queries across trees run by run, ripgrep in the
same rounds (bench/query_trees.py); ``--raw FILE`` takes the first ``--records`` lines of a file
made earlier instead of generating them:

    python bench/query.py --records 1000000 --raw /tmp/raw.ndjson --compare-tree /tmp/lh-cd1aa9a

Needles come from the data: the trace id of the record in the middle, the rare word
``unhandled`` (in "unhandled exception in POST /api/orders", about 0.07% of records), the
phrase "payment declined".
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
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import demo_mix  # noqa: E402 - after the path tweak
from logharbor.record import normalize  # noqa: E402
from logharbor.server.engine.store.embedded import EmbeddedStore  # noqa: E402
from logharbor.server.engine.store.rows import encode_row  # noqa: E402
from logharbor.server.engine.store.sqlsafe import quote_identifier  # noqa: E402
from logharbor.server.features.query import compile_query  # noqa: E402
from query_trees import search_options  # noqa: E402

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


def add_copies(store: EmbeddedStore, copies: int) -> None:
    """Grow the table to ``copies`` times its rows without generating more (generating is the
    slow part on a busy machine): copy ``k`` is every row ``k`` ms later with new trace and
    request ids (an MD5 of the old id and ``k``, still 32 hex digits), so every trace id stays
    as rare as in the generated data."""
    for k in range(1, copies):
        store.execute(
            f"INSERT INTO {store.table} SELECT * REPLACE (timestamp + toIntervalMillisecond({int(k)}) AS "  # noqa: S608
            f"timestamp, if(trace_id = '', '', lower(hex(MD5(concat(trace_id, '{int(k)}'))))) AS trace_id, "
            f"if(request_id = '', '', lower(hex(MD5(concat(request_id, '{int(k)}'))))) AS request_id, "
            f"'copy-{int(k)}' AS ingest_batch) FROM (SELECT * FROM {store.table} "
            "WHERE ingest_batch NOT LIKE 'copy-%') "
            f"SETTINGS insert_deduplication_token = 'copy-{int(k)}'")


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


def settle_mutations(store: EmbeddedStore, timeout_s: float = 3600) -> None:
    """Wait for the table's background mutations: opening a store made by an older release
    builds a new index for its parts (store/migrations.py), and a query timed before that is done
    reads those parts without it."""
    began = time.monotonic()
    while store.query("SELECT count() AS n FROM system.mutations WHERE database = currentDatabase() "
                      "AND table = {t:String} AND NOT is_done", {"t": store.table_name})[0]["n"]:
        if time.monotonic() - began > timeout_s:
            raise SystemExit("the store's mutations did not finish")
        time.sleep(0.5)
    emit(bench="query", step="mutations settled", seconds=round(time.monotonic() - began, 1))


def time_query(store: EmbeddedStore, name: str, q: str, runs: int, n: int) -> dict[str, float]:
    options = search_options(store)
    compiled = compile_query(q, table=store.table, time_from_ns=None, time_to_ns=None, limit=None,
                             max_limit=10_000, **options)
    rows = store.query(compiled.sql, compiled.params)  # warm-up
    samples = []
    cpu = []
    load = os.getloadavg()[0]
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        compiled = compile_query(q, table=store.table, time_from_ns=None, time_to_ns=None, limit=None,
                                 max_limit=10_000, **options)
        rows = store.query(compiled.sql, compiled.params)
        samples.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    # CPU of this process per query (chDB's threads included): the figure a loaded machine moves least
    result = {"p50_ms": round(statistics.median(samples), 2), "p99_ms": round(percentile(samples, 0.99), 2),
              "min_ms": round(min(samples), 2), "cpu_ms": round(statistics.median(cpu), 2)}
    emit(bench="query", query=name, q=q, records=n, runs=runs, rows=len(rows), **result,
         load_average=f"{load:.1f}-{os.getloadavg()[0]:.1f}")
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


#: the trace lookup variants compared by ``--lookup``: each a copy of the loaded table
LOOKUP_PROJECTION = "PROJECTION by_trace_id (SELECT _part_offset ORDER BY trace_id)"


def lookup_ab(store: EmbeddedStore, n: int, runs: int, needles: int) -> None:
    """Trace lookups by the bloom filter (the table as loaded) against two ways of turning them
    into a primary-key read, the same rows, queries interleaved run by run:

    - ``lookup table``: ``trace_id → (tenant, service, timestamp)`` in a table ordered by trace id,
      the logs read with ``(tenant, service, timestamp) IN (SELECT … FROM lookup WHERE trace_id = …)``;
    - ``projection``: a copy of the table with a ``_part_offset`` projection ordered by trace id
      (the engine's own per-part index; the query unchanged).

    Prints insert CPU of each copy (``INSERT … SELECT``, a cost at ingest) and the lookups' p50/min
    ms, and checks every variant returns the same rows as the bloom scan.
    """
    base = store.table_name
    proj, lookup, bare = f"{base}_bench_proj", f"{base}_bench_trace", f"{base}_bench_proj_nobloom"
    create = store.query("SELECT create_table_query AS q FROM system.tables "
                         "WHERE database = currentDatabase() AND name = {t:String}", {"t": base})[0]["q"]
    for name in (proj, lookup, bare):
        store.execute(f"DROP TABLE IF EXISTS {name}")
    _, _, rest = str(create).partition("(")
    body, _, tail = rest.partition(") ENGINE = ")
    store.execute(f"CREATE TABLE {proj} ({body}, {LOOKUP_PROJECTION}) ENGINE = {tail}")
    # the engine tests the bloom filter before the projection: a copy without it shows the lookup alone
    store.execute(f"CREATE TABLE {bare} AS {proj}")
    store.execute(f"ALTER TABLE {bare} DROP INDEX idx_trace_id")
    store.execute(f"CREATE TABLE {lookup} (tenant LowCardinality(String), service LowCardinality(String), "
                  "timestamp DateTime64(9, 'UTC'), trace_id String CODEC(ZSTD(1))) ENGINE = MergeTree "
                  "PARTITION BY toDate(timestamp) ORDER BY (trace_id, timestamp)")
    cpu = {}
    for name, sql in ((proj, f"INSERT INTO {proj} SELECT * FROM {store.table}"),  # noqa: S608
                      (bare, f"INSERT INTO {bare} SELECT * FROM {store.table}"),  # noqa: S608
                      (lookup, f"INSERT INTO {lookup} SELECT tenant, service, timestamp, trace_id "  # noqa: S608
                               f"FROM {store.table} WHERE trace_id != ''")):
        t0 = time.process_time()
        store.execute(sql)
        store.execute(f"OPTIMIZE TABLE {name} FINAL")
        cpu[name] = time.process_time() - t0
    sizes = {r["table"]: int(r["b"]) for r in store.query(
        "SELECT table, sum(bytes_on_disk) AS b FROM system.parts WHERE active "
        "AND database = currentDatabase() AND table IN {t:Array(String)} GROUP BY table",
        {"t": [base, proj, lookup]})}
    proj_bytes = store.query("SELECT sum(bytes_on_disk) AS b FROM system.projection_parts WHERE active "
                             "AND database = currentDatabase() AND table = {t:String}", {"t": proj})
    emit(bench="lookup", step="build", records=n, copy_with_projection_cpu_s=round(cpu[proj], 2),
         copy_with_projection_no_bloom_cpu_s=round(cpu[bare], 2),
         lookup_table_cpu_s=round(cpu[lookup], 2), table_bytes=sizes.get(base),
         projection_bytes=int(proj_bytes[0]["b"] or 0), lookup_table_bytes=sizes.get(lookup))
    ids = [r["trace_id"] for r in store.query(
        f"SELECT trace_id FROM {store.table} WHERE trace_id != '' ORDER BY cityHash64(trace_id) "  # noqa: S608
        f"LIMIT {int(needles)}", {})]
    for fields in ("", " | fields timestamp, service, message"):
        variants: dict[str, list[float]] = {"bloom": [], "lookup table": [], "projection": [],
                                            "projection, no bloom": []}
        cpu_used: dict[str, float] = dict.fromkeys(variants, 0.0)
        for run in range(runs):
            tid = ids[run % len(ids)]
            compiled = compile_query(f"trace_id:{tid}{fields}", table=store.table, time_from_ns=None,
                                     time_to_ns=None, limit=None, max_limit=10_000)
            where = "WHERE (`trace_id` = {p0:String})"
            keyed = (where + " AND (tenant, service, timestamp) IN "  # noqa: S608
                     f"(SELECT tenant, service, timestamp FROM {lookup} WHERE trace_id = {{p0:String}})")
            sqls = {"bloom": compiled.sql,
                    "lookup table": compiled.sql.replace(where, keyed, 1),
                    # the engine skips a projection index on tables under 1M rows by default
                    "projection": compiled.sql.replace(f"FROM {store.table} ", f"FROM {proj} ", 1)
                    + " SETTINGS min_table_rows_to_use_projection_index = 0",
                    "projection, no bloom": compiled.sql.replace(f"FROM {store.table} ", f"FROM {bare} ", 1)
                    + " SETTINGS min_table_rows_to_use_projection_index = 0"}
            answers = {}
            for name in (list(variants) if run % 2 == 0 else list(reversed(variants))):
                t0, c0 = time.perf_counter(), time.process_time()
                answers[name] = store.query(sqls[name], compiled.params)
                variants[name].append((time.perf_counter() - t0) * 1000)
                cpu_used[name] += time.process_time() - c0
            same = all(rows == answers["bloom"] for rows in answers.values())
            if not same or not answers["bloom"]:
                raise SystemExit(f"lookup variants disagree for trace {tid}")
        base_p50 = statistics.median(variants["bloom"])
        for name, samples in variants.items():
            emit(bench="lookup", query="trace-id lookup" + (", 3 fields" if fields else ""), variant=name,
                 records=n, runs=runs, p50_ms=round(statistics.median(samples), 2),
                 min_ms=round(min(samples), 2), cpu_ms=round(cpu_used[name] / runs * 1000, 2),
                 ratio_to_bloom=round(statistics.median(samples) / base_p50, 2))
    for name in (proj, lookup, bare):
        store.execute(f"DROP TABLE IF EXISTS {name}")


def wide_ab(store: EmbeddedStore, n: int, runs: int, wide_bytes: int, queries: list[tuple[str, str]]) -> None:
    """The same rows in two copies of the table, inserted in 100k-row parts and not merged (as a
    store holds its recent data): one as shipped, one with ``min_bytes_for_wide_part`` raised to
    ``wide_bytes`` (so those parts stay Compact: one file for all columns instead of one or more
    per column and JSON path). Queries interleaved run by run; CPU ms of the process per query."""
    base = store.table_name
    _, _, rest = str(store.query("SELECT create_table_query AS q FROM system.tables "
                                 "WHERE database = currentDatabase() AND name = {t:String}",
                                 {"t": base})[0]["q"]).partition("(")
    body, _, tail = rest.partition(") ENGINE = ")
    tables = {"shipped": f"{base}_bench_wide", "compact": f"{base}_bench_compact"}
    for name, table in tables.items():
        store.execute(f"DROP TABLE IF EXISTS {table}")
        settings = f", min_bytes_for_wide_part = {int(wide_bytes)}" if name == "compact" else ""
        store.execute(f"CREATE TABLE {table} ({body}) ENGINE = {tail}{settings}")
        store.execute(f"SYSTEM STOP MERGES {table}")
        t0 = time.process_time()
        # blocks (so parts) of about 100k rows
        store.execute(f"INSERT INTO {table} SELECT * FROM {store.table} SETTINGS "  # noqa: S608
                      "min_insert_block_size_rows = 100000, min_insert_block_size_bytes = 0, "
                      "max_block_size = 100000, max_insert_threads = 1, max_threads = 1")
        emit(bench="wide", table=name, insert_cpu_s=round(time.process_time() - t0, 2), **store.query(
            "SELECT count() AS parts, countIf(part_type = 'Compact') AS compact_parts, "
            "sum(bytes_on_disk) AS bytes FROM system.parts WHERE active AND database = currentDatabase() "
            "AND table = {t:String}", {"t": table})[0])
    for label, q in queries:
        samples: dict[str, list[float]] = {name: [] for name in tables}
        for run in range(runs):
            for name in (list(tables) if run % 2 == 0 else list(reversed(tables))):
                compiled = compile_query(q, table=quote_identifier(tables[name]), time_from_ns=None,
                                         time_to_ns=None, limit=None, max_limit=10_000)
                c0 = time.process_time()
                store.query(compiled.sql, compiled.params)
                samples[name].append((time.process_time() - c0) * 1000)
        base_cpu = statistics.fmean(samples["shipped"])
        emit(bench="wide", query=label, q=q, records=n, runs=runs,
             **{f"{name}_cpu_ms": round(statistics.fmean(v), 2) for name, v in samples.items()},
             compact_vs_shipped=round(statistics.fmean(samples["compact"]) / max(base_cpu, 1e-9), 2))
    for table in tables.values():
        store.execute(f"DROP TABLE IF EXISTS {table}")


def table_settings_ab(store: EmbeddedStore, n: int, runs: int, variants: list[str],
                      queries: list[tuple[str, str]], needles: int) -> None:
    """Copies of the loaded table with other MergeTree settings (``index_granularity_bytes=1048576``,
    ``index_granularity=2048``: smaller granules, so a lookup decompresses fewer rows of every
    column), each filled with ``INSERT … SELECT`` and merged, against the table as loaded: CPU of
    the copy's insert and merge, bytes on disk, then every query on each table, interleaved run
    by run (trace lookups cycle through ``needles`` trace ids, so no cache answers them); the
    answers must be the same rows."""
    base = store.table_name
    _, _, rest = str(store.query("SELECT create_table_query AS q FROM system.tables "
                                 "WHERE database = currentDatabase() AND name = {t:String}",
                                 {"t": base})[0]["q"]).partition("(")
    body, _, tail = rest.partition(") ENGINE = ")
    tables = {"as loaded": base}
    for i, variant in enumerate(variants):
        name, _, value = variant.partition("=")
        if not name.replace("_", "").isalnum() or not value.isdigit():
            raise SystemExit(f"--table-setting wants name=integer, not {variant!r}")
        table = f"{base}_bench_settings_{i}"
        store.execute(f"DROP TABLE IF EXISTS {table}")
        store.execute(f"CREATE TABLE {table} ({body}) ENGINE = {tail}, {name} = {int(value)}")
        t0 = time.process_time()
        store.execute(f"INSERT INTO {table} SELECT * FROM {store.table}")  # noqa: S608
        insert_s = time.process_time() - t0
        store.execute(f"OPTIMIZE TABLE {table} FINAL")
        emit(bench="table-settings", variant=variant, records=n, insert_cpu_s=round(insert_s, 2),
             optimize_cpu_s=round(time.process_time() - t0 - insert_s, 2), **store.query(
                 "SELECT sum(bytes_on_disk) AS bytes, sum(marks) AS granules FROM system.parts WHERE active "
                 "AND database = currentDatabase() AND table = {t:String}", {"t": table})[0])
        tables[variant] = table
    ids = [r["trace_id"] for r in store.query(
        f"SELECT trace_id FROM {store.table} WHERE trace_id != '' ORDER BY cityHash64(trace_id) "  # noqa: S608
        f"LIMIT {int(needles)}", {})]
    for label, q in queries:
        cpu: dict[str, list[float]] = {name: [] for name in tables}
        wall: dict[str, list[float]] = {name: [] for name in tables}
        for run in range(runs):
            text = q
            if label.startswith("trace-id lookup"):
                text = f"trace_id:{ids[run % len(ids)]}" + q.partition(" ")[1] + q.partition(" ")[2]
            answers = {}
            for name in (list(tables) if run % 2 == 0 else list(reversed(tables))):
                compiled = compile_query(text, table=quote_identifier(tables[name]), time_from_ns=None,
                                         time_to_ns=None, limit=None, max_limit=10_000)
                t0, c0 = time.perf_counter(), time.process_time()
                answers[name] = store.query(compiled.sql, compiled.params)
                wall[name].append((time.perf_counter() - t0) * 1000)
                cpu[name].append((time.process_time() - c0) * 1000)
            if any(len(rows) != len(answers["as loaded"]) for rows in answers.values()):
                raise SystemExit(f"table variants disagree on {text!r}")
        base_cpu = statistics.median(cpu["as loaded"])
        emit(bench="table-settings", query=label, records=n, runs=runs,
             load_average=round(os.getloadavg()[0], 1),
             **{f"{name} cpu_ms": round(statistics.median(v), 2) for name, v in cpu.items()},
             **{f"{name} p50_ms": round(statistics.median(v), 2) for name, v in wall.items()},
             **{f"{name} vs as loaded": round(statistics.median(cpu[name]) / max(base_cpu, 1e-9), 2)
                for name in tables if name != "as loaded"})
    for name, table in tables.items():
        if name != "as loaded":
            store.execute(f"DROP TABLE IF EXISTS {table}")


def merge_blocks_ab(store: EmbeddedStore, n: int, blocks: list[int]) -> None:
    """Merge work per inserted row when the same rows arrive as parts of ``blocks`` rows each
    (a batcher insert of that size), merges running as they do in the server: each size into a
    fresh copy of the table, then wait until the merge threads are idle; CPU of the engine's
    ``MergeMutate`` threads and the rows the merges rewrote (``MergedRows``), per row inserted."""
    from ingest import settle_merges, thread_cpu_s

    base = store.table_name
    _, _, rest = str(store.query("SELECT create_table_query AS q FROM system.tables "
                                 "WHERE database = currentDatabase() AND name = {t:String}",
                                 {"t": base})[0]["q"]).partition("(")
    body, _, tail = rest.partition(") ENGINE = ")
    table = f"{base}_bench_blocks"

    def merged_rows() -> int:
        rows = store.query("SELECT value FROM system.events WHERE event = 'MergedRows'", {})
        return int(rows[0]["value"]) if rows else 0

    for rows in blocks:
        store.execute(f"DROP TABLE IF EXISTS {table}")
        store.execute(f"CREATE TABLE {table} ({body}) ENGINE = {tail}")
        before, merged0, t0 = thread_cpu_s(os.getpid()), merged_rows(), time.perf_counter()
        store.execute(f"INSERT INTO {table} SELECT * FROM {store.table} SETTINGS "  # noqa: S608
                      f"min_insert_block_size_rows = {int(rows)}, min_insert_block_size_bytes = 0, "
                      f"max_block_size = {int(rows)}, max_insert_threads = 1, max_threads = 1")
        after = settle_merges(os.getpid())
        merge_s = sum(v - before.get(k, 0.0) for k, v in after.items() if k.startswith("MergeMutate"))
        parts = store.query("SELECT count() AS n FROM system.parts WHERE active "
                            "AND database = currentDatabase() AND table = {t:String}", {"t": table})
        emit(bench="merge-blocks", rows_per_insert=rows, records=n, inserts=-(-n // rows),
             seconds=round(time.perf_counter() - t0, 1), merge_cpu_s=round(merge_s, 2),
             merge_cpu_us_per_row=round(merge_s / n * 1e6, 2),
             merged_rows_per_row=round((merged_rows() - merged0) / n, 2),
             active_parts_after=int(parts[0]["n"]),
             load_average=round(os.getloadavg()[0], 1))
    store.execute(f"DROP TABLE IF EXISTS {table}")


def compare_trees(args: argparse.Namespace) -> None:
    """This tree and each ``--compare-tree`` on the same raw file, queries interleaved."""
    from query_trees import compare

    work = Path(tempfile.mkdtemp(prefix="lh-bench-query-trees-"))
    raw = work / "raw.ndjson"
    try:
        if args.raw:
            with open(args.raw, "rb") as src, raw.open("wb") as out:
                for _ in range(args.records):
                    line = src.readline()
                    if not line:
                        raise SystemExit(f"{args.raw} has fewer than {args.records} lines")
                    out.write(line)
        else:
            with raw.open("wb") as out:
                for i, start in enumerate(range(0, args.records, args.batch)):
                    out.write(b"\n".join(demo_mix(min(args.batch, args.records - start), seed=7 + i)) + b"\n")
        trace_id = ""
        with raw.open("rb") as f:
            for i, line in enumerate(f):
                if i >= args.records // 2 and (trace_id := orjson.loads(line).get("trace_id") or ""):
                    break
        queries = [q for q in query_list(trace_id) if not args.only or args.only in q[0]]
        trees = [ROOT, *(Path(d).resolve() for d in args.compare_tree)]
        compare(trees, work, raw, args.records, args.batch, args.runs, queries,
                {"trace-id lookup": trace_id, "rare word": RARE_WORD})
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def query_list(trace_id: str) -> list[tuple[str, str]]:
    """The queries timed, by name: needles from the data."""
    return [
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--rg-runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=100_000, help="records per chunk and insert")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--reuse", default="", help="a directory kept by --keep: skip generating and loading")
    parser.add_argument("--only", default="", help="run only the queries whose name contains this")
    parser.add_argument("--lookup", action="store_true",
                        help="also compare trace lookups: bloom filter, lookup table, projection")
    parser.add_argument("--copies", type=int, default=1,
                        help="generate records/copies and copy them (new trace ids): a quicker load")
    parser.add_argument("--wide-bytes", type=int, default=0,
                        help="also compare unmerged 100k-row parts as shipped and with "
                             "min_bytes_for_wide_part=N")
    parser.add_argument("--merge-blocks", default="",
                        help="also: merge CPU per row when the rows come as inserts of these sizes "
                             "(10000,35000,…)")
    parser.add_argument("--needles", type=int, default=20, help="trace ids --lookup cycles through")
    parser.add_argument("--table-setting", action="append", default=[], metavar="NAME=N",
                        help="also compare a merged copy of the table with this MergeTree setting "
                             "(repeatable: one copy each), queries interleaved")
    parser.add_argument("--compare-tree", action="append", default=[], metavar="DIR",
                        help="also load and query with DIR's code (DIR/src, e.g. a git archive of another "
                             "commit), interleaved with this tree's (bench/query_trees.py)")
    parser.add_argument("--raw", default="", help="with --compare-tree: the first --records lines of this "
                                                  "NDJSON file instead of generating them")
    args = parser.parse_args()
    if args.compare_tree:
        compare_trees(args)
        return
    work = Path(args.reuse) if args.reuse else Path(tempfile.mkdtemp(prefix="lh-bench-query-"))
    store = EmbeddedStore(work / "store")
    try:
        raw = work / "raw.ndjson"
        store.open()
        if args.reuse:
            n = store.stats().rows
            middle = store.query(f"SELECT trace_id FROM {store.table} WHERE trace_id != '' "  # noqa: S608
                                 "ORDER BY timestamp LIMIT 1 OFFSET {o:UInt64}", {"o": n // 2})
            trace_id = str(middle[0]["trace_id"])
            emit(bench="query", step="reuse", records=n, directory=str(work))
            settle_mutations(store)
        else:
            trace_id, insert_s = generate_and_load(store, args.records // args.copies, raw, args.batch)
            add_copies(store, args.copies)
            load_stats(store, args.records, insert_s)
            n = store.stats().rows
        queries = query_list(trace_id)
        if args.lookup:
            lookup_ab(store, n, args.runs, args.needles)
        if args.merge_blocks:
            merge_blocks_ab(store, n, [int(x) for x in args.merge_blocks.split(",")])
        if args.wide_bytes:
            wide_ab(store, n, args.runs, args.wide_bytes,
                    [q for q in queries if not args.only or args.only in q[0]])
        if args.only:
            queries = [q for q in queries if args.only in q[0]]
        if args.table_setting:
            table_settings_ab(store, n, args.runs, args.table_setting, queries, args.needles)
            return
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
        if not args.keep and not args.reuse:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
