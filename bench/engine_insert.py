"""The engine's insert CPU per row on the real logs table: input format, settings, table parts.

Issue #24: the server's CPU per record is the decode, the HTTP loop, the batcher and the engine
(insert + merges ~14–17 µs of ~40). This script takes the engine alone, in this process, on the
rows the server itself writes: the demo mix decoded by the server's decoder (rowc when built) in
bodies of 2,000 lines, joined into inserts of ``--insert-rows`` rows and marked with their batch
token as the store marks them (store/batches.py). Every variant inserts those same rows into a
fresh table made from schema.sql (with the patterns and free-text views, as the server makes
them), with merges stopped, and the CPU of the process (``time.process_time``: chDB's threads
included) is divided by the rows. Rounds alternate the variants' order, so a machine getting
busier falls on all:

    python bench/engine_insert.py --records 200000 --insert-rows 20000 --rounds 3

Variants (all on the same rows; the first, ``baseline``, is the server's own statement, so the
ratios are against it):

- ``baseline``: JSONEachRow with the store's INSERT settings (store/embedded.py ``_insert_rows``).
- formats: ``RowBinary``, ``Native``, ``Arrow``, ``TabSeparated``, ``JSONCompactEachRow`` — the
  same rows converted by the engine beforehand (outside the timing) from a Memory table that
  took the JSONEachRow rows, inserted with an explicit column list and the same settings. What a
  writer of those formats (rowc, the Python reference) would cost is not in these figures.
- settings (JSONEachRow): ``input_format_parallel_parsing = 0``,
  ``input_format_defaults_for_omitted_fields = 0``, ``min_insert_block_size_rows = 0`` (no
  squashing), ``optimize_on_insert = 0`` (the patterns table is an AggregatingMergeTree),
  ``materialize_skip_indexes_on_insert = 0`` (indexes built by the merges instead),
  ``max_insert_threads = 1``, ``async_insert = 0`` (the default, said explicitly).
- table parts: ``no_patterns_view`` (the patterns materialized view's share),
  ``no_free_text_view`` (the free-text values view's share, store/freetext.py),
  ``no_skip_indexes`` (every INDEX line out), ``no_text_index`` (only the message's text index
  out), ``no_bloom`` (the bloom filters out), ``no_promoted`` (the promoted attributes' tuple and
  its indexes out).
- ``store_insert``: the whole verified insert (``EmbeddedStore.insert``: marking, the insert, the
  parts and count read back) on unmarked rows: the store's own cost above the statement.

Each variant prints one JSON line (µs per row of every round, mean, ratio to baseline, parts
made); ``--only a,b`` runs some (baseline always first).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import demo_mix  # noqa: E402 - after the path tweak
from logharbor.server.engine.store import embedded  # noqa: E402
from logharbor.server.engine.store.base import schema_sql  # noqa: E402
from logharbor.server.engine.store.batches import mark_rows  # noqa: E402
from logharbor.server.engine.store.embedded import EmbeddedStore  # noqa: E402
from logharbor.server.engine.store.freetext import free_text_ddl, free_text_table_name  # noqa: E402
from logharbor.server.engine.store.patterns import patterns_ddl, patterns_table_name  # noqa: E402
from logharbor.server.ingest import decoder  # noqa: E402
from logharbor.server.ingest.base import RecordLimits  # noqa: E402

FORMATS = ("RowBinary", "Native", "Arrow", "TabSeparated", "JSONCompactEachRow")
SETTINGS = {
    "parallel_parsing_0": "input_format_parallel_parsing = 0",
    "omitted_defaults_0": "input_format_defaults_for_omitted_fields = 0",
    "no_squashing": "min_insert_block_size_rows = 0, min_insert_block_size_bytes = 0",
    "optimize_on_insert_0": "optimize_on_insert = 0",
    "skip_indexes_on_insert_0": "materialize_skip_indexes_on_insert = 0",
    "insert_threads_1": "max_insert_threads = 1",
    "async_insert_0": "async_insert = 0",
}


def _no_index(line: str) -> bool:
    return line.lstrip().startswith("INDEX ")


#: name: (drop this line of schema.sql?, the patterns view, the free-text view)
TABLES: dict[str, tuple[Callable[[str], bool], bool, bool]] = {
    "no_patterns_view": (lambda line: False, False, True),
    "no_free_text_view": (lambda line: False, True, False),
    "no_skip_indexes": (_no_index, True, True),
    "no_text_index": (lambda line: _no_index(line) and "TYPE text(" in line, True, True),
    "no_bloom": (lambda line: _no_index(line) and "bloom_filter" in line, True, True),
    "no_promoted": (lambda line: line.lstrip().startswith(("attr_", "INDEX idx_attr_")), True, True),
}


def emit(**fields: object) -> None:
    print(orjson.dumps(fields).decode(), flush=True)


def table_ddl(name: str, drop: Callable[[str], bool]) -> str:
    """schema.sql for ``name`` without the lines ``drop`` names (the comma before ``)`` mended)."""
    lines = [line for line in schema_sql(name).splitlines() if not drop(line)]
    for i, line in enumerate(lines):
        if line.startswith(")") and lines[i - 1].rstrip().endswith(","):
            lines[i - 1] = lines[i - 1].rstrip()[:-1]
    return "\n".join(lines)


class Bench:
    """One chDB session (the store's writing one) and the converted inserts of each format."""

    def __init__(self, work: Path, inserts: list[bytes]) -> None:
        self.store = EmbeddedStore(work / "store", readers=1)
        self.store.open()
        self.session = self.store._session
        self.inserts = inserts
        self.rows = sum(x.count(b"\n") + 1 for x in inserts)
        self.seq = 0
        cols = self.sql("SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                        "AND table = 'logs' AND default_kind = '' ORDER BY position")
        self.columns = [str(c["name"]) for c in cols]
        self.sql("CREATE TABLE stage (" + ", ".join(f"`{c['name']}` {c['type']}" for c in cols)
                 + ") ENGINE = Memory")
        self.converted: dict[str, list[bytes]] = {}

    def sql(self, sql: str) -> list[dict[str, object]]:
        out = self.session.query(sql, "JSONEachRow").bytes()
        return [orjson.loads(line) for line in out.splitlines() if line]

    def convert(self, fmt: str) -> list[bytes]:
        """The inserts in ``fmt``, written by the engine from the same rows (not timed)."""
        if fmt not in self.converted:
            out = []
            for rows in self.inserts:
                self.sql("TRUNCATE TABLE stage")
                self._send("stage", rows, "JSONEachRow", embedded._LOGS_INSERT)
                cols = ", ".join(f"`{c}`" for c in self.columns)
                sql = f"SELECT {cols} FROM stage SETTINGS max_block_size = 1048576"  # noqa: S608 - our names
                out.append(self.session.query(sql, fmt).bytes())
            self.converted[fmt] = out
        return self.converted[fmt]

    def _send(self, table: str, rows: bytes, fmt: str, settings: str, columns: str = "") -> None:
        self.seq += 1
        sql = (f"INSERT INTO {table}{columns} SETTINGS insert_deduplication_token = 'bench-{self.seq}', "
               f"max_insert_block_size = {embedded._BLOCK_ROWS}, {settings}")
        with self.session.send_insert(sql, fmt) as inserter:
            inserter.append(rows)
            inserter.finish()

    def fresh(self, name: str, drop: Callable[[str], bool] = lambda line: False, patterns_view: bool = True,
              free_text_view: bool = True) -> str:
        """A new logs table ``name`` with the views the store makes on it (each unless told not
        to), merges stopped."""
        patterns, values = patterns_table_name(name), free_text_table_name(name)
        for old in (patterns + "_mv", patterns, values + "_mv", values, name):
            self.sql(f"DROP TABLE IF EXISTS `{old}` SYNC")
        self.sql(table_ddl(name, drop))
        for statement in [*(patterns_ddl(name, patterns) if patterns_view else []),
                          *(free_text_ddl(name, values) if free_text_view else [])]:
            self.sql(statement)
        self.sql(f"SYSTEM STOP MERGES `{name}`")
        return name

    def run(self, variant: str) -> dict[str, float]:
        """Insert every batch of the variant into a fresh table; CPU µs per row, parts made."""
        table = self.fresh("ei_" + variant.lower(), *TABLES.get(variant, (lambda line: False, True, True)))
        todo: Callable[[], None]
        if variant in FORMATS:
            data = self.convert(variant)
            cols = " (" + ", ".join(f"`{c}`" for c in self.columns) + ")"

            def todo() -> None:
                for rows in data:
                    self._send(table, rows, variant, embedded._LOGS_INSERT, cols)
        elif variant == "store_insert":
            plain = [strip_marks(rows) for rows in self.inserts]
            self.store.hot_table = f"`{table}`"
            self.store.table_name = table

            def todo() -> None:
                for rows in plain:
                    self.seq += 1
                    self.store.insert(rows, dedup_token=f"wal-{self.seq}-{self.seq}")
        else:
            settings = embedded._LOGS_INSERT + (", " + SETTINGS[variant] if variant in SETTINGS else "")

            def todo() -> None:
                for rows in self.inserts:
                    self._send(table, rows, "JSONEachRow", settings)

        t0, w0 = time.process_time(), time.perf_counter()
        todo()
        cpu, wall = time.process_time() - t0, time.perf_counter() - w0
        got = self.sql(f"SELECT count() AS n, uniqExact(_part) AS p FROM `{table}`")[0]  # noqa: S608
        if int(got["n"]) != self.rows:  # type: ignore[call-overload]
            raise SystemExit(f"{variant}: {got['n']} rows stored of {self.rows}")
        return {"cpu_us": cpu / self.rows * 1e6, "wall_us": wall / self.rows * 1e6, "parts": float(got["p"])}  # type: ignore[arg-type]


def strip_marks(rows: bytes) -> bytes:
    """Marked rows without their ``ingest_batch`` prefix (what the batcher hands the store)."""
    return b"\n".join(b"{" + line.split(b",", 1)[1] for line in rows.split(b"\n"))


def make_inserts(records: int, insert_rows: int) -> tuple[list[bytes], dict[str, object]]:
    """The demo mix through the server's decoder, as marked inserts of ``insert_rows`` rows."""
    lines = demo_mix(records)
    received, limits = time.time_ns(), RecordLimits()
    rows: list[bytes] = []
    for i in range(0, len(lines), 2000):
        payload, _accepted, errors = decoder.decode_ndjson_payload(b"\n".join(lines[i:i + 2000]), received,
                                                                  limits, None, None)
        if errors:
            raise SystemExit(f"the decoder refused demo-mix lines: {errors[:3]}")
        rows.extend(payload.split(b"\n"))
    inserts = [mark_rows(b"\n".join(rows[i:i + insert_rows]), f"wal-{i}-{i}")
               for i in range(0, len(rows), insert_rows)]
    return inserts, {"decoder": decoder.PATH, "row_bytes": round(sum(map(len, rows)) / len(rows), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--insert-rows", type=int, default=20_000, help="rows per INSERT (one batcher batch)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated variants (baseline is always run)")
    args = ap.parse_args()
    variants = ["baseline", *FORMATS, *SETTINGS, *TABLES, "store_insert"]
    if args.only:
        variants = ["baseline", *[v for v in args.only.split(",") if v != "baseline"]]
    unknown = set(variants) - {"baseline", *FORMATS, *SETTINGS, *TABLES, "store_insert"}
    if unknown:
        raise SystemExit(f"unknown variants: {', '.join(sorted(unknown))}")
    inserts, about = make_inserts(args.records, args.insert_rows)
    work = Path(tempfile.mkdtemp(prefix="lh-bench-engine-insert-"))
    try:
        bench = Bench(work, inserts)
        names = ", ".join(f"'{s.split(' = ')[0]}'" for v in SETTINGS.values() for s in v.split(", "))
        defaults = bench.sql(f"SELECT name, value FROM system.settings WHERE name IN ({names})")  # noqa: S608
        emit(bench="engine_insert", step="setup", records=bench.rows, inserts=len(inserts),
             insert_rows=args.insert_rows, load_average=round(os.getloadavg()[0], 2), **about,
             chdb_defaults={str(d["name"]): d["value"] for d in defaults})
        for fmt in FORMATS:
            if fmt in variants:
                bench.convert(fmt)
                emit(bench="engine_insert", step="converted", format=fmt,
                     bytes_per_row=round(sum(map(len, bench.converted[fmt])) / bench.rows, 1))
        got: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
        loads = []
        for r in range(args.rounds):
            loads.append(os.getloadavg()[0])
            for v in (variants if r % 2 == 0 else variants[::-1]):
                got[v].append(bench.run(v))
                emit(bench="engine_insert", step="round", round=r, variant=v,
                     cpu_us_per_row=round(got[v][-1]["cpu_us"], 2),
                     wall_us_per_row=round(got[v][-1]["wall_us"], 2),
                     load_average=round(os.getloadavg()[0], 2))
        loads.append(os.getloadavg()[0])
        base = statistics.fmean(x["cpu_us"] for x in got["baseline"])
        for v in variants:
            mean = statistics.fmean(x["cpu_us"] for x in got[v])
            emit(bench="engine_insert", variant=v, rows=bench.rows, rounds=args.rounds,
                 cpu_us_per_row=round(mean, 2), cpu_us_each=[round(x["cpu_us"], 2) for x in got[v]],
                 vs_baseline=round(mean / base, 3),
                 wall_us_per_row=round(statistics.fmean(x["wall_us"] for x in got[v]), 2),
                 parts=[int(x["parts"]) for x in got[v]],
                 load_range=[round(min(loads), 2), round(max(loads), 2)])
        bench.store.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
