"""Attribute storage side by side (issue #24 item 1): the same store rows in four table variants.

Generates N demo-mix records once (bench/ingest.py's mix, encoded by the server's own
``rows.encode_record``, so the rows are byte for byte what the batcher inserts), then, in one chDB
session, for each variant: creates the table, inserts the rows with merges stopped (insert CPU),
runs ``OPTIMIZE TABLE … FINAL`` (merge CPU), reads its size, and times five queries (median CPU
and wall of ``--runs``, the variants interleaved run by run). Rounds alternate the variant order
(a b c d, then d c b a, …) so that drift in the machine's load falls on all of them alike:

    python bench/schema.py --records 200000 --rounds 2 --runs 7

Variants: ``json`` (schema.sql as shipped: ``attributes JSON`` + ``attributes_exact``),
``json_typed`` (the same with typed Nullable paths for what the ALB/NGINX parsers and the demo
apps emit), ``map`` (``Map(LowCardinality(String), String)`` with bloom filters on keys and
values, the ClickHouse OpenTelemetry exporter's ``LogAttributes``), ``string`` (the attributes'
JSON text in a ``String`` column plus promoted typed columns computed at insert). CPU is the
process's (``time.process_time``: chDB runs in this process, its threads included). Every
variant prints one JSON line of figures; an ``exact`` line per variant says which probe values the
column gives back as sent (without logharbor's ``attributes_exact`` patch).

The ``text*`` variants (bench/schema_text.py: the attributes' exact text plus promoted columns, a
promoted tuple, a skip index on the text, the ZSTD level) are run by naming them, e.g.
``--variants text,text_cols,text_tuple,text_tokenbf``; with ``text`` among them the script also
times the promotion expressions alone (``step=expressions``). Every query's answer is compared
across the text variants (``step=check``). The query condition cache is off (it would time itself).
"""

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
from logharbor import exactjson  # noqa: E402
from logharbor.server.engine.store.attributes import with_settings  # noqa: E402
from logharbor.server.engine.store.chparams import encode_params  # noqa: E402
from logharbor.server.engine.store.rows import encode_record  # noqa: E402
from schema_text import EXPRESSIONS, long_tail_params, text_queries, text_variants  # noqa: E402

# the layout before issue #24 (attributes JSON + attributes_exact), kept as the baseline the variants
# replace (the shipped schema.sql is now the "string" variant's kind)
SCHEMA = (ROOT / "tests/store/old_schema.sql").read_text()
_SHIPPED_ATTRS = "    attributes         JSON CODEC(ZSTD(3)),\n"
_TYPED = {  # path: type, as the parsers (formats/alb.py, formats/nginx.py) and the demo apps emit them
    **dict.fromkeys(("type", "elb", "target_ip", "protocol", "url", "ssl_cipher", "ssl_protocol",
                     "target_group_arn", "domain_name", "chosen_cert_arn", "request_creation_time",
                     "actions_executed", "target_port_list", "target_status_code_list", "conn_trace_id",
                     "trace_header", "x_forwarded_for", "user_id", "logger", "order_id", "error_code"),
                    "String"),
    **dict.fromkeys(("client_port", "target_port", "target_status_code", "received_bytes",
                     "matched_rule_priority", "items", "hits"), "Int64"),
    **dict.fromkeys(("request_processing_ms", "target_processing_ms", "response_processing_ms",
                     "upstream_response_time_ms", "duration_ms", "amount"), "Float64"),
}
_TYPED_DDL = ", ".join(f"{p} Nullable({t})" for p, t in _TYPED.items())
_PROMOTED = (  # the hottest attributes as their own columns, computed by the engine at insert
    "    user_id String MATERIALIZED JSONExtractString(attributes, 'user_id') CODEC(ZSTD(3)),\n"
    "    order_id String MATERIALIZED JSONExtractString(attributes, 'order_id') CODEC(ZSTD(3)),\n"
    "    error_code LowCardinality(String) MATERIALIZED JSONExtractString(attributes, 'error_code'),\n"
    "    duration_ms Nullable(Float64) "
    "MATERIALIZED JSONExtract(attributes, 'duration_ms', 'Nullable(Float64)'),\n"
    "    INDEX idx_user_id user_id TYPE bloom_filter(0.01) GRANULARITY 1,\n"
    "    INDEX idx_order_id order_id TYPE bloom_filter(0.01) GRANULARITY 1,\n"
    "    INDEX idx_duration_ms duration_ms TYPE minmax GRANULARITY 1,\n")
VARIANTS = {
    "json": _SHIPPED_ATTRS,
    "json_typed": f"    attributes JSON({_TYPED_DDL}) CODEC(ZSTD(3)),\n",
    "map": ("    attributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),\n"
            "    INDEX idx_attr_key mapKeys(attributes) TYPE bloom_filter(0.01) GRANULARITY 1,\n"
            "    INDEX idx_attr_value mapValues(attributes) TYPE bloom_filter(0.01) GRANULARITY 1,\n"),
    "string": "    attributes String CODEC(ZSTD(3)),\n" + _PROMOTED,
    **text_variants(),
}
# how each variant reads an attribute: as a string, and as a number ("numbers compare as numbers")
_TEXT = {"json": "toString(attributes.{k})", "json_typed": "attributes.{k}", "map": "attributes['{k}']",
         "string": "{k}"}
_NUMBER = {"json": "toFloat64OrNull(toString(attributes.duration_ms))",
           "json_typed": "attributes.duration_ms", "map": "toFloat64OrNull(attributes['duration_ms'])",
           "string": "duration_ms"}
# the engine reads a JSON object into a String or Map(…, String) column as its text, unchanged
_INSERT = ("input_format_skip_unknown_fields = 1, input_format_json_read_objects_as_strings = 1, "
           "input_format_json_read_numbers_as_strings = 1, input_format_json_read_bools_as_strings = 1, "
           "input_format_json_read_arrays_as_strings = 1, max_insert_block_size = 1048576")
PROBE = {"big_int": 2**70, "int64_max": 2**63 - 1, "date_text": "2026-12-07", "float_one": 1.0, "int_one": 1,
         "neg_zero": -0.0, "null": None, "empty": {}, "mixed": [True, 1], "nested": {"a": {"b": "c"}}}


def ddl(variant: str, table: str) -> str:
    sql = SCHEMA.replace("{engine}", "MergeTree()").replace("{table}", table)
    if variant in ("map", "string") or variant.startswith("text"):  # the text as sent: no exact copy
        sql = sql.replace("    attributes_exact   String CODEC(ZSTD(3)),\n", "")
    return sql.replace(_SHIPPED_ATTRS, VARIANTS[variant])


def queries(variant: str) -> dict[str, str]:
    if variant.startswith("text"):
        return text_queries(variant)
    text = _TEXT[variant]
    cold = "JSONExtractString(attributes, '{k}')" if variant == "string" else text
    return {
        "trace": "SELECT * FROM {t} WHERE trace_id = {trace:String} ORDER BY timestamp DESC LIMIT 100",
        "by_error_code": f"SELECT {text.format(k='error_code')} AS e, count() AS n FROM {{t}} GROUP BY e",  # noqa: S608
        "user_id": f"SELECT * FROM {{t}} WHERE {text.format(k='user_id')} = {{user:String}} "  # noqa: S608
                   "ORDER BY timestamp DESC LIMIT 100",
        "rare_word": "SELECT * FROM {t} WHERE hasAllTokens(lowerUTF8(message), 'unhandled') "
                     "ORDER BY timestamp DESC LIMIT 100",
        "duration_gt_1000": f"SELECT count() AS n FROM {{t}} WHERE {_NUMBER[variant]} > 1000",  # noqa: S608
        # an attribute no variant promotes: the long tail, which the String variant must parse
        "by_logger": f"SELECT {cold.format(k='logger')} AS g, count() AS n FROM {{t}} GROUP BY g",  # noqa: S608
    }


def answer_group(name: str) -> str:
    """Queries that ask the same question (a guard or an index must not change the answer)."""
    if name.startswith(("rare_", "common_")):
        return name.split("_")[0] + ("_rows" if name.endswith("_rows") else "_count")
    return name


def emit(**fields: object) -> None:
    print(orjson.dumps(fields).decode(), flush=True)


class Bench:
    def __init__(self, work: Path) -> None:
        from chdb import session

        # no query condition cache: it remembers which granules a filter matched, so every run
        # after the first would skip them and time the cache, not the filter
        self.session = session.Session(with_settings(str(work / "chdb")) + "&use_query_condition_cache=0")

    def sql(self, sql: str, params: dict[str, str] | None = None) -> list[dict[str, object]]:
        out = self.session.query(sql, "JSONEachRow", params=encode_params(params or {})).bytes()
        return [orjson.loads(line) for line in out.splitlines() if line]

    def insert(self, table: str, bodies: list[bytes]) -> None:
        for body in bodies:
            with self.session.send_insert(f"INSERT INTO {table} SETTINGS {_INSERT}", "JSONEachRow") as ins:
                ins.append(body)
                ins.finish()

    def load(self, variant: str, bodies: list[bytes], n: int) -> dict[str, float]:
        table = f"bench_{variant}"
        self.sql(f"DROP TABLE IF EXISTS {table} SYNC")
        self.sql(ddl(variant, table))
        self.sql(f"SYSTEM STOP MERGES {table}")
        t0 = time.process_time()
        self.insert(table, bodies)
        insert_cpu = time.process_time() - t0
        self.sql(f"SYSTEM START MERGES {table}")
        t0 = time.process_time()
        self.sql(f"OPTIMIZE TABLE {table} FINAL")
        merge_cpu = time.process_time() - t0
        size = self.sql("SELECT sum(rows) AS r, sum(bytes_on_disk) AS b FROM system.parts WHERE active "
                        "AND database = currentDatabase() AND table = {t:String}", {"t": table})[0]
        attr = self.sql("SELECT sum(column_data_compressed_bytes) AS b FROM system.parts_columns WHERE "
                        "active AND database = currentDatabase() AND table = {t:String} AND (column IN "
                        "('attributes', 'attributes_exact', 'user_id', 'order_id', 'error_code', "
                        "'duration_ms', 'attr') OR startsWith(column, 'attr_'))",
                        {"t": table})[0]
        text = self.sql("SELECT sum(column_data_compressed_bytes) AS b FROM system.parts_columns WHERE "
                        "active AND database = currentDatabase() AND table = {t:String} "
                        "AND column = 'attributes'", {"t": table})[0]
        index = self.sql("SELECT sum(data_compressed_bytes) AS b FROM system.data_skipping_indices WHERE "
                         "database = currentDatabase() AND table = {t:String} AND name = 'idx_attr_text'",
                         {"t": table})[0]
        assert int(size["r"]) == n, (variant, size)
        return {"insert_cpu_us": insert_cpu / n * 1e6, "merge_cpu_us": merge_cpu / n * 1e6,
                "bytes_per_record": int(size["b"]) / n, "attr_bytes_per_record": int(attr["b"]) / n,
                "attributes_column_bytes_per_record": int(text["b"]) / n,
                "attr_text_index_bytes_per_record": int(index["b"] or 0) / n}

    def granules(self, sql: str, params: dict[str, str]) -> str:
        """The granules the last index step of ``EXPLAIN indexes = 1`` keeps, as 'kept/total'."""
        plan = self.session.query(f"EXPLAIN indexes = 1 {sql}", "TSV", params=encode_params(params)).bytes()
        steps = [line.split("Granules:")[1].strip() for line in plan.decode().splitlines()
                 if "Granules:" in line]
        return steps[-1] if steps else "?"

    def probe(self, variant: str) -> dict[str, bool]:
        """Which probe values come back exactly as sent (the JSON variants without the patch)."""
        table = f"probe_{variant}"
        self.sql(f"DROP TABLE IF EXISTS {table} SYNC")
        self.sql(ddl(variant, table))
        line = encode_record({"timestamp": "2026-12-07T09:00:00Z", "message": "probe", "attributes": PROBE})
        sent = exactjson.loads(line).get("attributes", {})  # what the encoder sent
        self.insert(table, [line])
        back = self.sql(f"SELECT toJSONString(attributes) AS a FROM {table}")[0]["a"]  # noqa: S608
        text = variant == "string" or variant.startswith("text")
        got = exactjson.loads(back) if not text else exactjson.loads(exactjson.loads(back))
        if variant == "map":  # values are the text as sent: a string's content, anything else its JSON
            return {k: k in sent and got.get(k) == (sent[k] if isinstance(sent[k], str)
                                                    else exactjson.dumps(sent[k]).decode()) for k in PROBE}
        return {k: k in sent and k in got and exactjson.dumps(got[k]) == exactjson.dumps(sent[k])
                for k in PROBE}


def expression_costs(bench: Bench, n: int, runs: int) -> None:
    """CPU µs per row of each way of computing the promoted columns, over ``bench_text``'s stored
    text (interleaved runs, median, the plain read of the column subtracted): the insert's share."""
    cpu: dict[str, list[float]] = {name: [] for name in EXPRESSIONS}
    for i in range(runs * 2 + 1):
        for name, sql in (EXPRESSIONS.items() if i % 2 == 0 else reversed(EXPRESSIONS.items())):
            c0 = time.process_time()
            bench.sql(sql.replace("{t}", "bench_text"))
            cpu[name].append(time.process_time() - c0)
    read = statistics.median(cpu["read"])
    emit(bench="schema", step="expressions", records=n, runs=runs * 2 + 1, load_average=os.getloadavg()[0],
         read_us=round(read / n * 1e6, 3),
         **{f"{k}_us": round((statistics.median(v) - read) / n * 1e6, 3)
            for k, v in cpu.items() if k != "read"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=50_000, help="rows per INSERT")
    ap.add_argument("--rounds", type=int, default=2, help="load rounds, the variant order alternating")
    ap.add_argument("--runs", type=int, default=7, help="runs of each query (median)")
    ap.add_argument("--variants", default="json,json_typed,map,string",
                    help=f"comma-separated, of: {', '.join(VARIANTS)} (the text* ones by name only)")
    args = ap.parse_args()
    variants = args.variants.split(",")
    n = args.records
    t0 = time.perf_counter()
    received = time.time_ns()
    rows = [encode_record(orjson.loads(line), received_ns=received) for line in demo_mix(n)]
    bodies = [b"\n".join(rows[i:i + args.batch]) for i in range(0, n, args.batch)]
    trace = next(orjson.loads(r)["trace_id"] for r in rows[n // 2:] if b'"trace_id"' in r)
    user = next(orjson.loads(r)["attributes"]["user_id"] for r in rows[n // 2:] if b'"user_id"' in r)
    params = {"trace": trace, "user": user, **long_tail_params(rows)}
    emit(bench="schema", step="generate", records=n, row_bytes=sum(map(len, rows)) // n,
         seconds=round(time.perf_counter() - t0, 1), load_average=os.getloadavg()[0])
    del rows
    work = Path(tempfile.mkdtemp(prefix="lh-bench-schema-"))
    try:
        bench = Bench(work)
        loads: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
        for r in range(args.rounds):
            for v in (variants if r % 2 == 0 else variants[::-1]):
                loads[v].append(bench.load(v, bodies, n))
        timings: dict[tuple[str, str], list[tuple[float, float]]] = {}
        # the same question must get the same answer in every text variant, guarded or not (the
        # older variants differ in what SELECT * returns and in absent-vs-'' by design)
        answers: dict[str, set[bytes]] = {}
        for v in variants:
            for name, q in queries(v).items():
                got = bench.sql(q.replace("{t}", f"bench_{v}"), params)  # warm-up
                if v.startswith("text"):
                    answers.setdefault(answer_group(name), set()).add(
                        b"\n".join(sorted(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in got)))
        emit(bench="schema", step="check", differing=sorted(g for g, a in answers.items() if len(a) > 1))
        for i in range(args.runs):
            for v in (variants if i % 2 == 0 else variants[::-1]):
                for name, q in queries(v).items():
                    c0, w0 = time.process_time(), time.perf_counter()
                    bench.sql(q.replace("{t}", f"bench_{v}"), params)
                    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
                    timings.setdefault((v, name), []).append((cpu, wall))
        for v in variants:
            fig: dict[str, object] = {k: round(statistics.mean(x[k] for x in loads[v]), 2)
                                      for k in loads[v][0]}
            fig["insert_cpu_us_each"] = [round(x["insert_cpu_us"], 2) for x in loads[v]]
            for name in queries(v):
                samples = timings[(v, name)]
                fig[f"{name}_ms"] = round(statistics.median(w for _, w in samples) * 1000, 2)
                fig[f"{name}_cpu_ms"] = round(statistics.median(c for c, _ in samples) * 1000, 2)
                if name.startswith(("rare_", "common_", "user_id", "duration")):
                    sql = queries(v)[name].replace("{t}", f"bench_{v}")
                    fig[f"{name}_granules"] = bench.granules(sql, params)
            emit(bench="schema", variant=v, records=n, rounds=args.rounds, runs=args.runs,
                 load_average=os.getloadavg()[0], **fig)
        if "text" in variants:
            expression_costs(bench, n, args.runs)
        for v in variants:
            emit(bench="schema", step="exact", variant=v, **bench.probe(v))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
