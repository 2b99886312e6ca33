"""Where the logs table's bytes are, per column and per index, for schema.sql variants side by side.

The same demo-mix store rows (bench/ingest.py's mix, encoded by the server's own
``rows.encode_record``; or ``--rows FILE`` of such rows, one per line) are loaded, in one chDB
session, into one table per variant: inserts of ``--batch`` rows with merges stopped (insert CPU),
then ``OPTIMIZE TABLE … FINAL`` (merge CPU), then the compressed bytes of every column
(``system.parts_columns``) and every skip index (``system.data_skipping_indices``) per record.
Rounds alternate the variant order so that drift in the machine's load falls on all alike; the
bytes do not depend on the load, the CPU does (process CPU: chDB's threads are this process's).

    python bench/schema_codecs.py --records 1000000 --rounds 2 --compare-tree /tmp/lh-base-s \\
        --variants shipped,sort_ts

Variants: ``shipped`` (this tree's schema.sql), ``tree:<DIR>`` for each ``--compare-tree`` (that
tree's schema.sql), and the named edits of the shipped text in :data:`EDITS`.
"""

# ruff: noqa: S608 - the SQL here pastes only this module's table names; no value comes from input
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import demo_mix  # noqa: E402 - after the path tweak
from logharbor.server.engine.store.attributes import with_settings  # noqa: E402
from logharbor.server.engine.store.rows import encode_record  # noqa: E402

SCHEMA = "src/logharbor/server/engine/store/schema.sql"
#: name → (text in schema.sql, its replacement): one change each, measured against ``shipped``
EDITS = {
    "sort_ts": ("ORDER BY (tenant, service, timestamp)", "ORDER BY (tenant, timestamp)"),
    "bloom_0.01": ("idx_trace_id trace_id TYPE bloom_filter(0.001)",
                   "idx_trace_id trace_id TYPE bloom_filter(0.01)"),
    "message_zstd6": ("message            String CODEC(ZSTD(3))",
                      "message            String CODEC(ZSTD(6))"),
    "attributes_zstd3": ("attributes         String CODEC(ZSTD(1))",
                         "attributes         String CODEC(ZSTD(3))"),
}
_INSERT = ("input_format_skip_unknown_fields = 0, input_format_json_read_objects_as_strings = 1, "
           "max_insert_block_size = 1048576")


def emit(**fields: object) -> None:
    print(orjson.dumps(fields).decode(), flush=True)


def ddl(variant: str, table: str) -> str:
    if variant.startswith("tree:"):
        text = (Path(variant[5:]) / SCHEMA).read_text()
    else:
        text = (ROOT / SCHEMA).read_text()
        if variant != "shipped":
            old, new = EDITS[variant]
            assert old in text, f"{variant}: {old!r} is not in schema.sql"
            text = text.replace(old, new)
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return body.replace("{table}", table).replace("{engine}", "MergeTree()")


class Loader:
    def __init__(self, work: Path) -> None:
        from chdb import session

        self.session = session.Session(with_settings(str(work / "chdb")))

    def rows(self, sql: str) -> list[dict[str, object]]:
        return [orjson.loads(x) for x in self.session.query(sql, "JSONEachRow").bytes().splitlines() if x]

    def load(self, variant: str, table: str, bodies: list[bytes]) -> dict[str, object]:
        self.rows(f"DROP TABLE IF EXISTS {table} SYNC")
        self.rows(ddl(variant, table))
        self.rows(f"SYSTEM STOP MERGES {table}")
        c0 = time.process_time()
        for i, body in enumerate(bodies):
            sql = f"INSERT INTO {table} SETTINGS insert_deduplication_token = 'b{i}', {_INSERT}"
            with self.session.send_insert(sql, "JSONEachRow") as ins:
                ins.append(body)
                ins.finish()
        insert_cpu = time.process_time() - c0
        self.rows(f"SYSTEM START MERGES {table}")
        c0 = time.process_time()
        self.rows(f"OPTIMIZE TABLE {table} FINAL")
        merge_cpu = time.process_time() - c0
        where = f"database = currentDatabase() AND table = '{table}'"
        total = self.rows("SELECT sum(rows) AS n, sum(bytes_on_disk) AS b, count() AS parts, "
                          "groupUniqArray(default_compression_codec) AS codec FROM system.parts "
                          f"WHERE active AND {where}")[0]
        n = int(total["n"])
        cols = self.rows("SELECT column AS c, sum(column_data_compressed_bytes) AS b "
                         f"FROM system.parts_columns WHERE active AND {where} GROUP BY c")
        idx = self.rows("SELECT name AS c, sum(data_compressed_bytes) AS b "
                        f"FROM system.data_skipping_indices WHERE {where} GROUP BY c")
        # parts: OPTIMIZE FINAL leaves one per partition; default_codec: what the engine chose for
        # the columns and index files without a codec of their own (it depends on the part's size)
        return {"records": n, "parts": int(total["parts"]), "default_codec": total["codec"],
                "bytes_per_record": int(total["b"]) / n, "insert_cpu_us": insert_cpu / n * 1e6,
                "merge_cpu_us": merge_cpu / n * 1e6,
                "columns": {str(c["c"]): int(c["b"]) / n for c in cols},
                "indexes": {str(c["c"]): int(c["b"]) / n for c in idx}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--rows", type=Path, help="store rows (JSONEachRow, as encode_record writes them)")
    ap.add_argument("--batch", type=int, default=50_000, help="rows per INSERT")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--compare-tree", action="append", default=[], metavar="DIR")
    ap.add_argument("--variants", default="shipped", help=f"comma-separated: shipped, {', '.join(EDITS)}")
    args = ap.parse_args()
    variants = [f"tree:{d}" for d in args.compare_tree] + args.variants.split(",")
    n = args.records
    if args.rows:
        with args.rows.open("rb") as f:
            rows = [line.rstrip(b"\n") for _, line in zip(range(n), f, strict=False)]
    else:
        received = time.time_ns()
        rows = [encode_record(orjson.loads(line), received_ns=received) for line in demo_mix(n)]
    n = len(rows)
    bodies = [b"\n".join(rows[i:i + args.batch]) for i in range(0, n, args.batch)]
    emit(bench="schema_codecs", step="rows", records=n, row_bytes=round(sum(map(len, rows)) / n, 1),
         load_average=os.getloadavg()[0])
    del rows
    work = Path(tempfile.mkdtemp(prefix="lh-bench-codecs-"))
    try:
        loader = Loader(work)
        runs: dict[str, list[dict[str, object]]] = {v: [] for v in variants}
        for r in range(args.rounds):
            for i, v in (list(enumerate(variants)) if r % 2 == 0 else list(enumerate(variants))[::-1]):
                runs[v].append(loader.load(v, f"v{i}", bodies))
        for v in variants:
            last = runs[v][-1]
            emit(bench="schema_codecs", variant=v, records=last["records"], rounds=args.rounds,
                 parts=last["parts"], default_codec=last["default_codec"],
                 load_average=os.getloadavg()[0], bytes_per_record=round(float(last["bytes_per_record"]), 2),
                 insert_cpu_us=round(statistics.median(float(x["insert_cpu_us"]) for x in runs[v]), 2),
                 merge_cpu_us=round(statistics.median(float(x["merge_cpu_us"]) for x in runs[v]), 2),
                 insert_cpu_us_each=[round(float(x["insert_cpu_us"]), 2) for x in runs[v]],
                 merge_cpu_us_each=[round(float(x["merge_cpu_us"]), 2) for x in runs[v]],
                 columns={k: round(b, 2) for k, b in sorted(last["columns"].items(), key=lambda kv: -kv[1])},  # type: ignore[union-attr]
                 indexes={k: round(b, 2) for k, b in sorted(last["indexes"].items(), key=lambda kv: -kv[1])})  # type: ignore[union-attr]
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
