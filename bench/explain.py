"""Explain benchmark (issue #28): what ``POST /api/v1/explain`` costs over N records in the window.

Generates ``--records`` records in a focus window of 30 minutes and as many in the 30 minutes
before (web traffic over 8 hosts, 2 versions, 5 paths, 3 regions and 5,000 users; in the focus,
version 1.4.3 on web-7 answers 502 on /api/pay), inserted by the engine itself (``INSERT …
SELECT`` from ``numbers()``: generating 20M records in Python would take longer than everything
else), then times in process, over ``--runs`` runs:

- ``explain`` of ``*`` (every record of the focus against every record before) and of
  ``status:>=500`` (the errors), with the default baseline (the window before);
- the **old path** side by side, in the same run (``--before REV``: the explain modules of that
  git revision, loaded from git into a private package; default the last revision before explain
  counted on time slices of the primary key), unless ``--before ''``;
- the **baseline** of the same run: ``* | stats count() by host`` over both windows (one plain
  aggregation over the same records, the least any comparison of the two windows must cost).

Runs alternate (new, old, new, old …) so load changes touch both alike. Prints one JSON line per
measurement with p50/min over the runs and the load average:

    python bench/explain.py --records 1000000 --runs 5
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from logharbor.server.engine.store.base import StoreError  # noqa: E402
from logharbor.server.engine.store.embedded import EmbeddedStore  # noqa: E402
from logharbor.server.features.explain import ExplainRequest, explain  # noqa: E402
from logharbor.server.features.query import compile_query  # noqa: E402

START_NS = 1_793_534_400 * 10**9  # 2026-11-01T12:00:00Z
WINDOW_NS = 30 * 60 * 10**9

# the generator: only integers computed here enter the text (the record count and the times)
_INSERT = """
INSERT INTO {table} (tenant, timestamp, observed_timestamp, level, severity_number, service, source, host,
    instance, env, version, message, trace_id, span_id, request_id, http_method, http_path, http_status,
    http_duration_ms, attributes, pattern_id)
SELECT '', ts, ts, if(st >= 500, 'ERROR', if(st >= 400, 'WARN', 'INFO')), if(st >= 500, 17, 9), 'checkout',
    'app', host, concat(host, ':8080'), 'prod', ver,
    concat(path, ' answered ', toString(st)), lower(hex(cityHash64(n, 1))), '', lower(hex(cityHash64(n, 2))),
    if(path = '/api/pay', 'POST', 'GET'), path, st, dur,
    concat('{{"region":"', ['eu-west-1', 'us-east-1', 'ap-south-1'][1 + cityHash64(n, 3) % 3],
           '","user_id":"u-', toString(cityHash64(n, 4) % 5000), '"}}'),
    if(st = 502, 'a000000000000502', concat('b00000000000', toString(st)))
FROM (
    SELECT number AS n,
        fromUnixTimestamp64Nano(toInt64({start} + number * intDiv({span}, {total})), 'UTC') AS ts,
        number >= {half} AS focus,
        concat('web-', toString(1 + cityHash64(number, 5) % 8)) AS host,
        if(cityHash64(number, 6) % 10 < 3, '1.4.3', '1.4.2') AS ver,
        ['/api/orders', '/api/pay', '/api/cart', '/api/items', '/health'][1 + cityHash64(number, 7) % 5]
            AS path,
        multiIf(focus AND host = 'web-7' AND ver = '1.4.3' AND path = '/api/pay', 502,
                cityHash64(number, 8) % 1000 < 5, 500, cityHash64(number, 8) % 1000 < 35, 404, 200) AS st,
        round(exp(3 + (cityHash64(number, 9) % 1000) / 1000.0) * if(st = 502, 4, 1), 3) AS dur
    FROM numbers({total})
)
"""


#: the revision whose explain read every record (two full passes), the bench's "before"
BEFORE = "edc401c"
_OLD_MODULES = {"engine": "src/logharbor/server/features/explain/engine.py",
                "passes": "src/logharbor/server/features/explain/passes.py",
                "sets": "src/logharbor/server/features/explain/sets.py",
                "stats": "src/logharbor/server/features/explain/stats.py",
                "sql_explain": "src/logharbor/server/engine/store/sql/explain.py"}


def old_explain(rev: str, into: Path) -> Any:
    """``explain`` as it was at ``rev``: its modules written to a private package (``git show``),
    the one absolute import of its own SQL module pointed at the copy."""
    package = into / "explain_before"
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("")
    for name, path in _OLD_MODULES.items():
        text = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:{path}"], check=True,
                              capture_output=True, text=True).stdout
        text = text.replace("from logharbor.server.engine.store.sql import explain as sql",
                            "from . import sql_explain as sql")
        text = text.replace("from logharbor.server.engine.store.sql.explain import",
                            "from .sql_explain import")
        (package / f"{name}.py").write_text(text)
    sys.path.insert(0, str(into))
    return importlib.import_module("explain_before.engine")


def load() -> tuple[float, float, float]:
    return os.getloadavg()


def timed(runs: int, fn: Any) -> tuple[list[float], Any]:
    times, out = [], None
    for _ in range(runs):
        began = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - began) * 1000)
    return times, out


def emit(**fields: Any) -> None:
    fields["load_avg"] = [round(x, 2) for x in load()]
    print(orjson.dumps(fields).decode(), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000, help="records in the focus window")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="a data directory to keep (reused when it has the data)")
    parser.add_argument("--before", default=BEFORE, help="git revision of the old path ('' for none)")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="lh-bench-explain-"))
    modules = Path(tempfile.mkdtemp(prefix="lh-bench-explain-old-"))
    old = old_explain(args.before, modules) if args.before else None
    store = EmbeddedStore(root / "store")
    store.open()
    try:
        total = 2 * args.records
        have = store.query(f"SELECT count() AS n FROM {store.table}", {})[0]["n"]  # noqa: S608 -- quoted name
        if int(have) != total:
            began = time.perf_counter()
            store.execute(_INSERT.format(table=store.table, start=START_NS, span=2 * WINDOW_NS,
                                         total=int(total), half=int(args.records)))
            store.execute(f"OPTIMIZE TABLE {store.table} FINAL")
            emit(step="load", records=total, seconds=round(time.perf_counter() - began, 1))
        focus = (START_NS + WINDOW_NS, START_NS + 2 * WINDOW_NS)
        for q in ("*", "status:>=500"):
            paths = {"new": (explain, ExplainRequest(q=q, focus=focus))}
            if old is not None:
                paths["old"] = (old.explain, old.ExplainRequest(q=q, focus=focus))
            times: dict[str, list[float]] = {name: [] for name in paths}
            answers: dict[str, Any] = {}
            for name, (run, req) in list(paths.items()):
                try:
                    run(store, req, scope=None, settings={})  # warm
                except StoreError as exc:
                    if name == "new":
                        raise
                    # the old revision's SQL names columns of the table of its day (attributes_exact
                    # before the attributes switch): it cannot read today's table, so no ratio
                    emit(step="old_path_skipped", before=args.before, q=q,
                         reason=str(exc).splitlines()[0][:200])
                    del paths[name]
                    old = None
            for _ in range(args.runs):  # alternating, so a change of load touches both
                for name, (run, req) in paths.items():
                    took, answers[name] = timed(1, lambda run=run, req=req: run(store, req, scope=None,
                                                                                 settings={}))
                    times[name] += took
            for name, answer in answers.items():
                top = [f"{v['field']}={v['value']}" for v in answer["values"] if v["significant"]][:4]
                emit(step="explain", path=name, q=q, focus_records=answer["focus"]["count"],
                     baseline_records=answer["baseline"]["count"], counted=answer.get("counted"),
                     sampled={k: answer["sampled"][k] for k in ("focus", "baseline")},
                     p50_ms=round(statistics.median(times[name]), 1), min_ms=round(min(times[name]), 1),
                     runs=args.runs, top=top, tests=answer["statistic"]["tests"])
            if old is not None:
                emit(step="ratio", q=q, old_over_new_p50=round(statistics.median(times["old"])
                                                               / statistics.median(times["new"]), 2))
        compiled = compile_query("* | stats count() by host", table=store.table, time_from_ns=START_NS,
                                 time_to_ns=START_NS + 2 * WINDOW_NS, limit=None, max_limit=10_000)
        times, _ = timed(args.runs, lambda: store.query(compiled.sql, compiled.params))
        emit(step="baseline", q="* | stats count() by host", records=total,
             p50_ms=round(statistics.median(times), 1), min_ms=round(min(times), 1), runs=args.runs)
    finally:
        store.close()
        shutil.rmtree(modules, ignore_errors=True)
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
