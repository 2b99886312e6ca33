"""bench/tail.py at a tiny size: its generated rows fit the logs table as it is today.

The script fills the store with SQL of its own (10M rows would take too long through ingest), so a
schema change leaves it behind unless something runs it: it failed on a column count after the
attributes switch and nobody knew until a measurement was due.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]


def test_tail_bench_fills_the_current_table_and_finds_every_trace(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench/tail.py"), "--trace-records", "3000", "--lookups", "5",
         "--load-rate", "200", "--batch", "50", "--seconds", "2", "--clients", "0",
         "--data-dir", str(tmp_path / "data")],
        capture_output=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    lines = [orjson.loads(line) for line in done.stdout.splitlines() if line.startswith(b"{")]
    load = next(x for x in lines if x.get("stage") == "load")
    assert load["records"] == 3000
    # every sampled trace and request id answered with its three layers (the script asserts 3 rows)
    assert {x["by"] for x in lines if x.get("stage") == "trace"} == {"trace_id", "request_id"}
    tail = next(x for x in lines if x.get("stage") == "tail")
    assert tail["probes"] > 0 and tail["received"] == tail["probes"], tail
