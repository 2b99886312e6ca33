"""Every benchmark script runs, at its smallest size, against the code as it is today.

The figures in bench/README.md are only worth the scripts that can reproduce them, and a script
nobody runs rots with the code around it: three had (an explain baseline revision that cannot
read today's table, a metadata catalog that gained an argument, tail's fill SQL with two columns
fewer than the table). These runs check that each still ends cleanly and prints its JSON lines;
the figures themselves are never asserted (a test never times anything). The scripts with tests of
their own (ingest, query, tail, schema_codecs) are not repeated here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

SMALLEST = {
    "alerts": ["--rules", "3", "--records", "2000", "--minutes", "1"],
    "attr_query": ["--records", "20000", "--runs", "1"],
    "delete": ["--records", "3000", "--days", "2", "--user-records", "100", "--user-days", "1"],
    "explain": ["--records", "3000", "--runs", "1"],
    "clock_skew": ["--requests", "300"],
    "retention": ["--records", "2000", "--rounds", "1", "--days", "2", "--extra-files", "3"],
    "logql": ["--records", "2000", "--runs", "1"],
    "search": ["--records", "2000", "--runs", "1"],
    "agent": ["--mbytes", "1", "--kinds", "nginx", "--no-rsyslog", "--rounds", "1"],
    "agent_steps": ["--lines", "1000", "--rounds", "1"],
    "parsers": ["--mbytes", "0.2"],
    "patterns": ["--records", "1000", "--batch", "500", "--clients", "1", "--rounds", "1",
                 "--miner-records", "1000", "--bound-records", "1000"],
    "protocols": ["--records", "1000", "--batch", "500", "--clients", "1", "--rounds", "1"],
    "schema": ["--records", "1000", "--batch", "1000", "--rounds", "1", "--runs", "1"],
    "sdk": ["--calls", "500", "--repeat", "1"],
    "wal": ["--seconds", "0.5", "--rounds", "1"],
}


def test_every_bench_script_is_run_by_a_test() -> None:
    """A new script gets a line above (or a test of its own) — else it rots unseen."""
    own_tests = {"ingest", "query", "tail", "schema_codecs", "engine_insert", "http_path", "query_variants"}
    helpers = {"query_trees", "schema_text", "patterns_corpora", "patterns_accuracy"}  # imported or need corpora
    scripts = {p.stem for p in (ROOT / "bench").glob("*.py")}
    assert scripts - own_tests - helpers == set(SMALLEST), scripts - own_tests - helpers ^ set(SMALLEST)


@pytest.mark.parametrize("script", sorted(SMALLEST))
def test_bench_script_runs_at_its_smallest_size(script: str, tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), TMPDIR=str(tmp_path))
    done = subprocess.run([sys.executable, str(ROOT / "bench" / f"{script}.py"), *SMALLEST[script]],
                          capture_output=True, env=env, cwd=tmp_path, timeout=600, check=False)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    lines = [orjson.loads(line) for line in done.stdout.splitlines() if line.startswith(b"{")]
    assert lines, done.stdout.decode()[-2000:]


def test_query_variants_run_on_a_kept_store(tmp_path: Path) -> None:
    """bench/query_variants.py works on a store bench/query.py kept: every mode, one run each."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), TMPDIR=str(tmp_path), RUNS="1")
    kept = subprocess.run([sys.executable, str(ROOT / "bench/query.py"), "--records", "1500", "--batch", "1000",
                           "--runs", "1", "--rg-runs", "1", "--only", "trace-id lookup", "--keep"],
                          capture_output=True, env=env, cwd=tmp_path, timeout=600, check=False)
    assert kept.returncode == 0, kept.stderr.decode()[-3000:]
    (store,) = tmp_path.glob("lh-bench-query-*/store")
    for mode in ("columns", "free-word", "projection", "free-text-insert"):
        done = subprocess.run([sys.executable, str(ROOT / "bench/query_variants.py"), mode, str(store)],
                              capture_output=True, env=env, cwd=tmp_path, timeout=600, check=False)
        assert done.returncode == 0, (mode, done.stderr.decode()[-3000:])
        assert any(line.startswith(b"{") for line in done.stdout.splitlines()), mode
