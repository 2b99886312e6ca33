"""Insert figures for docs/scaling.md: wire and stored bytes per record, engine CPU per record.

    python -m tests.cluster.bench_insert --records 200000

Generates the demo mix (``bench/ingest.py``'s ``demo_mix``), normalizes it as ingest does and
inserts it in batches of 20 000 into the embedded store and, through the ClickHouse store, into
the HTTP double (chDB behind ClickHouse's HTTP interface). Prints JSON lines. The double's rate
is a Python test server's, not ClickHouse's; the per-record CPU and byte figures are the ones to use.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import orjson
import zstandard

from logharbor.record import normalize
from logharbor.server.engine.store.clickhouse import ClickHouseStore
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_row

from .conftest import ROOT, start_double, stop_double


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=20_000)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    from ingest import demo_mix  # bench/ingest.py

    lines = demo_mix(args.records)
    now = time.time_ns()
    rows = [encode_row(normalize(orjson.loads(line), received_ns=now)) for line in lines]
    batches = [b"\n".join(rows[i:i + args.batch]) for i in range(0, len(rows), args.batch)]
    n = args.records
    print(orjson.dumps({"records": n, "ndjson_bytes_per_record": sum(len(x) + 1 for x in lines) / n,
                        "row_bytes_per_record": sum(len(b) for b in batches) / n,
                        "zstd_wire_bytes_per_record": sum(len(zstandard.ZstdCompressor().compress(b))
                                                          for b in batches) / n}).decode(), flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="lh-bench-insert-"))
    for kind in ("embedded", "clickhouse"):
        double = None
        if kind == "embedded":
            store: EmbeddedStore | ClickHouseStore = EmbeddedStore(tmp / "embedded")
        else:
            double = start_double(tmp / "double")
            store = ClickHouseStore(double.url("bench"), writer_id="bench")
        store.open()
        wall, cpu = time.perf_counter(), time.process_time()
        for i, batch in enumerate(batches):
            store.insert(batch, dedup_token=f"wal-{i}-{i}")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if isinstance(store, EmbeddedStore):
            store.optimize()
        stats = store.stats()
        print(orjson.dumps({"store": kind, "insert_records_per_s": n / wall,
                            "process_cpu_us_per_record": cpu / n * 1e6, "rows": stats.rows,
                            "stored_bytes_per_record": stats.bytes_on_disk / max(stats.rows, 1)}).decode(),
              flush=True)
        store.close()
        if double is not None:
            stop_double(double)


if __name__ == "__main__":
    main()
