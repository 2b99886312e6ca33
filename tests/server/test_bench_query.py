"""bench/query.py --compare-tree: every tree loads the same records and answers the same queries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[2]


def test_compare_tree_loads_and_queries_the_same_rows_in_each_tree() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench/query.py"), "--records", "1500", "--batch", "1000", "--runs", "2",
         "--only", "trace-id lookup", "--compare-tree", str(ROOT)],
        capture_output=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    lines = [orjson.loads(line) for line in done.stdout.splitlines()]
    loads = [x for x in lines if x.get("step") == "load"]
    assert [x["rows"] for x in loads] == [1500, 1500]
    assert len({x["tree"] for x in loads}) == 2  # the same tree twice gets two names
    answers = [x for x in lines if x.get("query") == "trace-id lookup" and x["tree"] != "ripgrep"]
    assert len(answers) == 2
    assert answers[0]["rows"] == answers[1]["rows"] and answers[0]["rows"][0] > 0
