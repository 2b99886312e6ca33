"""Issue #24's query targets, by variant: the same answer asked several ways on one store, the
variants interleaved run by run, CPU of this process per query (chDB's threads included) and wall
ms; every variant must return the same rows. On a store kept by ``bench/query.py --keep``
(a copy of it: the ``projection`` mode adds a projection to its table):

    python bench/query_variants.py columns DIR/store      # the trace lookup: which columns cost what
    python bench/query_variants.py free-word DIR/store    # a bare word: the OR, gated, without the OR
    python bench/query_variants.py projection DIR/store   # stats count() by service, level
    python bench/query_variants.py free-text-insert DIR/store 3000   # the free-text view's insert cost

- ``columns``: the compiled trace lookup (20 trace ids in turn, so no cache answers it) with its
  SELECT list replaced (the same WHERE), and with engine settings (``max_threads = 1``, the
  lazy-materialization limit, the query condition cache off), against ``SELECT 1`` and the plan
  alone (an id no granule holds, ``WHERE 0``).
- ``free-word``: a bare word as main compiled it (the OR over service/source/host/instance/env),
  gated by the free-text values table (store/freetext.py, as the server compiles it), and with
  the field terms cut (a lower bound, not an answer the language allows).
- ``projection``: adds ``PROJECTION counts_by_minute`` (counts per tenant, service, level and
  minute) and materializes it, then ``stats count() by service, level`` over all time and over the
  middle half of the time range, from rows (``optimize_use_projections = 0``), as compiled, and
  split (whole minutes from the projection, the two edges from rows).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from logharbor.server.engine.store.embedded import EmbeddedStore  # noqa: E402
from logharbor.server.features.query import compile_query  # noqa: E402
from query_trees import search_options  # noqa: E402

Variant = Callable[[int], tuple[str, dict[str, object]]]


def emit(**fields: object) -> None:
    print(orjson.dumps(fields).decode(), flush=True)


def compiled(store: EmbeddedStore, q: str, **options: object) -> tuple[str, dict[str, object]]:
    c = compile_query(q, table=store.table, time_from_ns=options.pop("time_from_ns", None),  # type: ignore[arg-type]
                      time_to_ns=options.pop("time_to_ns", None), limit=None, max_limit=10_000,  # type: ignore[arg-type]
                      **options)  # type: ignore[arg-type]
    return c.sql, dict(c.params)


def interleave(store: EmbeddedStore, label: str, variants: dict[str, Variant], runs: int) -> None:
    """Each variant once per round, the order reversed every other round; the same rows asked."""
    cpu: dict[str, list[float]] = {k: [] for k in variants}
    wall: dict[str, list[float]] = {k: [] for k in variants}
    rows: dict[str, int] = {}
    names = list(variants)
    for i in range(runs):
        for name in names if i % 2 == 0 else names[::-1]:
            sql, params = variants[name](i)
            t0, c0 = time.perf_counter(), time.process_time()
            out = store.query(sql, params)
            wall[name].append((time.perf_counter() - t0) * 1000)
            cpu[name].append((time.process_time() - c0) * 1000)
            rows[name] = len(out)
    for name in names:
        emit(bench="query-variants", query=label, variant=name, runs=runs, rows=rows[name],
             cpu_ms=round(statistics.median(cpu[name]), 2), p50_ms=round(statistics.median(wall[name]), 2),
             min_ms=round(min(wall[name]), 2), load_average=round(os.getloadavg()[0], 1))


def columns(store: EmbeddedStore, runs: int) -> None:
    ids = [str(r["trace_id"]) for r in store.query(
        f"SELECT trace_id FROM {store.table} WHERE trace_id != '' "  # noqa: S608
        "ORDER BY cityHash64(trace_id) LIMIT 20", {})]
    lc = ("tenant", "level", "service", "source", "host", "instance", "env", "version", "http_method",
          "http_user_agent", "pattern_id", "ingest_batch")

    def lookup(select: str | None = None, settings: str = "", trace: str | None = None) -> Variant:
        def make(i: int) -> tuple[str, dict[str, object]]:
            sql, params = compiled(store, f"trace_id:{trace or ids[i % len(ids)]}")
            if select is not None:
                sql = f"SELECT {select}" + sql[sql.index(" FROM "):]  # noqa: S608 -- our column names
            return (f"{sql} SETTINGS {settings}" if settings else sql), params
        return make

    every = [str(r["name"]) for r in store.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = {t:String} "
        "AND default_kind NOT IN ('MATERIALIZED', 'ALIAS') ORDER BY position", {"t": store.table_name})]
    quoted = {name: f"`{name}`" for name in every}
    absent = "0123456789abcdef0123456789abcdef"
    interleave(store, "trace-id lookup", {
        "SELECT 1": lambda i: ("SELECT 1", {}),
        "as compiled (26 columns)": lookup(),
        "max_threads = 1": lookup(settings="max_threads = 1"),
        "lazy materialization limit 1000": lookup(
            settings="query_plan_max_limit_for_lazy_materialization = 1000"),
        "query condition cache off": lookup(settings="use_query_condition_cache = 0"),
        "timestamp only": lookup("`timestamp`"),
        "3 columns": lookup("`timestamp`, `service`, `message`"),
        "timestamp, attributes": lookup("`timestamp`, `attributes`"),
        "all but attributes": lookup(", ".join(q for n, q in quoted.items() if n != "attributes")),
        "the 12 LowCardinality": lookup(", ".join(["`timestamp`", *(quoted[n] for n in lc)])),
        "the 14 others": lookup(", ".join(q for n, q in quoted.items() if n not in lc)),
        "26 columns, an absent id": lookup(trace=absent),
        "3 columns, an absent id": lookup("`timestamp`, `service`, `message`", trace=absent),
    }, runs)


def free_word(store: EmbeddedStore, runs: int, words: list[str]) -> None:
    t0 = time.process_time()
    options = search_options(store)  # fills the values table of a store made before it
    emit(bench="query-variants", step="free-text values",
         fill_cpu_ms=round((time.process_time() - t0) * 1000, 1))
    for word in words:
        for shape in ("", " | fields timestamp, service, message"):
            q = word + shape
            base = compiled(store, q)
            gated = compiled(store, q, **options)
            variants: dict[str, Variant] = {"as main compiles it": lambda i, s=base: s,
                                            "gated (free_text)": lambda i, s=gated: s}
            if not shape and "lowerUTF8(`service`)" in base[0]:
                sql = base[0]
                cut, end = sql.index(" OR (lowerUTF8(`service`)"), sql.index(" ORDER BY")
                variants["field terms cut"] = lambda i, s=(sql[:cut] + ")" + sql[end:], base[1]): s
            # the same rows; records of one timestamp come in any order (the engine's, run to run)
            answers = {k: sorted(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in store.query(*v(0)))
                       for k, v in variants.items()}
            if answers.pop("field terms cut", None) not in (None, answers["as main compiles it"]):
                del variants["field terms cut"]  # a field holds the word: cutting changes the answer
                emit(bench="query-variants", query=q, note="field terms cut: other rows (a field holds it)")
            if any(a != answers["as main compiles it"] for a in answers.values()):
                raise SystemExit(f"the variants of {q!r} disagree")
            for name, make in variants.items():
                _, stats = store.query_with_stats(*make(0))
                emit(bench="query-variants", query=q, variant=name, rows_read=stats["rows_read"],
                     bytes_read=stats["bytes_read"])
            interleave(store, q, variants, runs)


PROJECTION = ("PROJECTION counts_by_minute (SELECT tenant, service, level, toStartOfMinute(timestamp), "
              "count() GROUP BY tenant, service, level, toStartOfMinute(timestamp))")


def projection(store: EmbeddedStore, runs: int) -> None:
    table = store.table
    c0, t0 = time.process_time(), time.perf_counter()
    again = PROJECTION.replace("PROJECTION", "PROJECTION IF NOT EXISTS", 1)  # a store measured before
    store.execute(f"ALTER TABLE {table} ADD {again}")
    store.execute(f"ALTER TABLE {table} MATERIALIZE PROJECTION counts_by_minute SETTINGS mutations_sync = 1")
    size = store.query("SELECT sum(rows) AS rows, sum(bytes_on_disk) AS bytes FROM system.projection_parts "
                       "WHERE active AND database = currentDatabase() AND table = {t:String}",
                       {"t": store.table_name})[0]
    emit(bench="query-variants", step="projection", materialize_cpu_s=round(time.process_time() - c0, 2),
         seconds=round(time.perf_counter() - t0, 1), projection_rows=size["rows"],
         projection_bytes=size["bytes"])
    bounds = store.query(f"SELECT toUnixTimestamp64Nano(min(timestamp)) AS lo, "  # noqa: S608
                         f"toUnixTimestamp64Nano(max(timestamp)) AS hi FROM {table}", {})[0]
    lo, hi = int(bounds["lo"]), int(bounds["hi"])
    start, end = lo + (hi - lo) // 4 + 12_345_678_901, hi - (hi - lo) // 4 + 7_654_321  # off the minutes
    q = "* | stats count() by service, level"
    whole = compiled(store, q)
    ranged = compiled(store, q, time_from_ns=start, time_to_ns=end)
    minute = 60_000_000_000
    a, b = -(-start // minute) * minute, (end // minute) * minute

    def rows_between(lo_param: str, hi_param: str) -> str:
        return (f"SELECT service, level, count() AS n FROM {table} WHERE timestamp >= "  # noqa: S608
                f"fromUnixTimestamp64Nano({{{lo_param}:Int64}}, 'UTC') AND timestamp < "
                f"fromUnixTimestamp64Nano({{{hi_param}:Int64}}, 'UTC') GROUP BY service, level")

    split = ("SELECT service, level, sum(n) AS `count()` FROM ("  # noqa: S608
             f"SELECT service, level, count() AS n FROM {table} "
             "WHERE toStartOfMinute(timestamp) >= fromUnixTimestamp64Nano({a:Int64}, 'UTC') AND "
             "toStartOfMinute(timestamp) < fromUnixTimestamp64Nano({b:Int64}, 'UTC') GROUP BY service, level "
             f"UNION ALL {rows_between('f', 'a')} UNION ALL {rows_between('b', 't')}) "
             "GROUP BY service, level ORDER BY service, level")
    split_params: dict[str, object] = {"a": a, "b": b, "f": start, "t": end}
    off = " SETTINGS optimize_use_projections = 0"
    for label, variants in (("all time", {"rows": (whole[0] + off, whole[1]), "projection": whole}),
                            ("the middle half", {"rows": (ranged[0] + off, ranged[1]), "as compiled": ranged,
                                                 "split: projection + edges": (split, split_params)})):
        answers = {k: sorted(tuple(r.values()) for r in store.query(*v)) for k, v in variants.items()}
        if any(x != answers["rows"] for x in answers.values()):
            raise SystemExit(f"the variants of {q} over {label} disagree")
        for name, (sql, params) in variants.items():
            _, stats = store.query_with_stats(sql, params)
            emit(bench="query-variants", query=f"{q} ({label})", variant=name, rows_read=stats["rows_read"])
        interleave(store, f"{q} ({label})", {k: (lambda i, v=v: v) for k, v in variants.items()}, runs)


def free_text_insert(store: EmbeddedStore, runs: int, rows_per_insert: int) -> None:
    """What the free-text view costs an insert: empty copies of the logs table without it, with
    its first version (every pair of every insert: a part each time) and as shipped (new pairs
    only: an insert that brings no new value writes no part), each fed ``INSERT … SELECT`` of the
    same ``rows_per_insert`` rows in turn; CPU of the process per insert (its views run inside
    it), the parts the values table got."""
    from logharbor.server.engine.store.freetext import free_text_ddl

    base = store.table_name
    create = str(store.query("SELECT create_table_query AS q FROM system.tables WHERE database = "
                             "currentDatabase() AND name = {t:String}", {"t": base})[0]["q"])
    body = create[create.index("("):]
    names = {"no view": "bench_ft_none", "view, every pair (first version)": "bench_ft_every",
             "view, new pairs only (as shipped)": "bench_ft_new"}
    for table in names.values():
        for name in (f"{table}_values_mv", f"{table}_values", table):
            store.execute(f"DROP TABLE IF EXISTS {name}")
        store.execute(f"CREATE TABLE {table} {body}")
    for label, table in list(names.items())[1:]:
        create_table, view = free_text_ddl(table, f"{table}_values")
        store.execute(create_table)
        store.execute(view if "as shipped" in label else view.partition(" WHERE (pair.1")[0])
    cpu: dict[str, list[float]] = {k: [] for k in names}
    for i in range(runs):
        for label in list(names) if i % 2 == 0 else list(reversed(names)):
            c0 = time.process_time()
            store.execute(f"INSERT INTO {names[label]} SELECT * FROM {store.table} "  # noqa: S608
                          f"LIMIT {int(rows_per_insert)} OFFSET {int(i * rows_per_insert)}")
            cpu[label].append((time.process_time() - c0) * 1000)
    for label, table in names.items():
        parts = store.query("SELECT count() AS n FROM system.parts WHERE database = currentDatabase() "
                            "AND table = {t:String}", {"t": f"{table}_values"})
        emit(bench="query-variants", step="free-text insert", variant=label, inserts=runs,
             rows_per_insert=rows_per_insert, cpu_ms_per_insert=round(statistics.median(cpu[label]), 2),
             cpu_us_per_row=round(statistics.median(cpu[label]) * 1000 / rows_per_insert, 3),
             values_parts=parts[0]["n"] if label != "no view" else 0,
             load_average=round(os.getloadavg()[0], 1))
    for table in names.values():
        for name in (f"{table}_values_mv", f"{table}_values", table):
            store.execute(f"DROP TABLE IF EXISTS {name}")


def main() -> None:
    mode, path = sys.argv[1], sys.argv[2]
    runs = int(os.environ.get("RUNS", "10"))
    store = EmbeddedStore(path)
    store.open()
    try:
        emit(bench="query-variants", mode=mode, rows=store.stats().rows,
             parts=store.query("SELECT count() AS n FROM system.parts WHERE active AND "
                               "database = currentDatabase() AND table = {t:String}",
                               {"t": store.table_name})[0]["n"])
        if mode == "columns":
            columns(store, runs)
        elif mode == "free-word":
            free_word(store, runs, sys.argv[3:] or ["unhandled", "checkout"])
        elif mode == "projection":
            projection(store, runs)
        elif mode == "free-text-insert":
            free_text_insert(store, runs, int(sys.argv[3]) if len(sys.argv) > 3 else 3000)
        else:
            raise SystemExit(f"unknown mode {mode!r}: columns, free-word or projection")
    finally:
        store.close()


if __name__ == "__main__":
    main()
