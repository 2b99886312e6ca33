"""Attribute searches on the attributes text (issue #24): what the query compiler's substring guards
save, measured on the shipped schema with the compiler's own SQL.

Loads ``--records`` demo-mix rows (bench/ingest.py ``demo_mix``, encoded by the store's encoder)
into one chDB table made from schema.sql, then runs each query compiled twice — as shipped (a
substring search of the stored text before the JSON parse: filters.stored_needle, key_needle,
wildcard_needle) and with the guards taken out — interleaved run by run, and prints per variant
the median process CPU (chDB runs in this process) and wall time, and whether both answered the
same. The engine's query condition cache is off, so a repeated run pays for its scan again.

    python bench/attr_query.py --records 1000000 --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]

from ingest import demo_mix  # noqa: E402 - after the path tweak
from logharbor.server.engine.store.attributes import INSERT_SETTINGS, with_settings  # noqa: E402
from logharbor.server.engine.store.base import schema_sql  # noqa: E402
from logharbor.server.engine.store.chparams import encode_params  # noqa: E402
from logharbor.server.engine.store.rows import encode_record  # noqa: E402
from logharbor.server.features.query import CompiledQuery, compile_query  # noqa: E402
from logharbor.server.features.query import filters as guards  # noqa: E402

_NO_CACHE = " SETTINGS use_query_condition_cache = 0"


class Bench:
    def __init__(self, work: Path) -> None:
        from chdb import session

        self.session = session.Session(with_settings(str(work / "chdb")))

    def sql(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        out = self.session.query(sql, "JSONEachRow", params=encode_params(params or {})).bytes()
        return [orjson.loads(line) for line in out.splitlines() if line]

    def load(self, lines: Iterator[bytes], batch: int) -> None:
        self.sql(schema_sql("logs"))
        settings = ", ".join(f"{k} = {v}" for k, v in INSERT_SETTINGS.items())
        chunk: list[bytes] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) == batch:
                self._insert(chunk, settings)
                chunk = []
        if chunk:
            self._insert(chunk, settings)
        self.sql("OPTIMIZE TABLE logs FINAL")

    def _insert(self, rows: list[bytes], settings: str) -> None:
        with self.session.send_insert(f"INSERT INTO logs SETTINGS {settings}", "JSONEachRow") as ins:
            ins.append(b"\n".join(rows))
            ins.finish()


def compiled(text: str, *, guarded: bool) -> CompiledQuery:
    """The query as the server compiles it, or with every substring guard taken out."""
    saved = guards.stored_needle, guards.key_needle, guards.wildcard_needle
    if not guarded:
        guards.stored_needle = guards.key_needle = guards.wildcard_needle = lambda *_, **__: None  # type: ignore[assignment]
    try:
        return compile_query(text, table="logs", time_from_ns=None, time_to_ns=None, limit=100,
                             max_limit=10_000)
    finally:
        guards.stored_needle, guards.key_needle, guards.wildcard_needle = saved


def queries(bench: Bench) -> dict[str, str]:
    """Searches on attributes that are not promoted (the long tail) and, for scale, promoted ones."""
    pick = bench.sql("SELECT JSONExtractString(attributes, 'conn_trace_id') AS c, "
                     "JSONExtractString(attributes, 'elb') AS e FROM logs "
                     "WHERE JSONExtractString(attributes, 'conn_trace_id') != '' LIMIT 1 OFFSET 777")[0]
    user = bench.sql("SELECT attr_user_id AS u FROM logs WHERE attr_user_id IS NOT NULL "
                     "LIMIT 1 OFFSET 5000")[0]
    return {
        "rare id, equality": f'conn_trace_id:"{pick["c"]}" | stats count()',
        "rare id, full records": f'conn_trace_id:"{pick["c"]}"',
        "absent value": 'conn_trace_id:"TID_nosuchvalue00" | stats count()',
        "30% of rows, equality": f'elb:"{pick["e"]}" | stats count()',
        "dotted name (2 spellings)": 'http.route:"/products/{slug}" | stats count()',
        "wildcard": "conn_trace_id:TID_0a* | stats count()",
        "exists": "hits:* | stats count()",
        "exists, no such key": "nosuchkey:* | stats count()",
        "number range (no guard)": "hits:>5 | stats count()",
        "group by, not promoted": "* | stats count() by elb",
        "promoted: user_id equality": f'user_id:"{user["u"]}"',
        "promoted: user_id exists": "user_id:* | stats count()",
        "promoted: group by error_code": "* | stats count() by error_code",
        "promoted: duration_ms > 1000": "attributes.duration_ms:>1000 | stats count()",
    }


def measure(bench: Bench, text: str, runs: int) -> dict[str, Any]:
    variants = {"guarded": compiled(text, guarded=True), "unguarded": compiled(text, guarded=False)}
    if variants["guarded"].sql == variants["unguarded"].sql:
        variants = {"guarded": variants["guarded"]}
    times: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
    answers = {}
    for run in range(runs):
        for name in (list(variants) if run % 2 == 0 else list(reversed(variants))):
            c = variants[name]
            cpu, wall = time.process_time(), time.perf_counter()
            rows = bench.sql(c.sql + _NO_CACHE, c.params)
            times[name].append((time.process_time() - cpu, time.perf_counter() - wall))
            answers[name] = orjson.dumps(rows if c.kind != "records" else len(rows))
    out: dict[str, Any] = {"query": text, "same_answer": len(set(answers.values())) == 1}
    for name, samples in times.items():
        out[name] = {"cpu_ms": round(statistics.median(s[0] for s in samples) * 1000, 1),
                     "wall_ms": round(statistics.median(s[1] for s in samples) * 1000, 1)}
    if "unguarded" in out:
        out["cpu_ratio"] = round(out["guarded"]["cpu_ms"] / max(out["unguarded"]["cpu_ms"], 0.1), 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp))
        began = time.perf_counter()
        bench.load((encode_record(orjson.loads(line)) for line in demo_mix(args.records)), args.batch)
        loaded = {"records": args.records, "load_s": round(time.perf_counter() - began, 1)}
        print(orjson.dumps(loaded).decode(), flush=True)
        for name, text in queries(bench).items():
            print(orjson.dumps({"name": name, **measure(bench, text, args.runs)}).decode(), flush=True)


if __name__ == "__main__":
    main()
