"""bench/engine_insert.py and bench/http_path.py keep working: each prints every figure it promises.

Both scripts check their own work (every variant stores every row; every request reaches the
endpoint's 415) and exit non-zero otherwise, so a run that prints its lines is a run that held.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _lines(*args: str) -> list[dict[str, object]]:
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300,
                         check=True).stdout
    return [orjson.loads(line) for line in out.splitlines()]


@pytest.mark.slow
def test_engine_insert_prints_each_variant_side_by_side() -> None:
    lines = _lines(str(BENCH / "engine_insert.py"), "--records", "3000", "--insert-rows", "1500", "--rounds", "1",
                   "--only", "Native,no_patterns_view,no_free_text_view,store_insert")
    figures = {r["variant"]: r for r in lines if "variant" in r and r.get("step") is None}
    assert set(figures) == {"baseline", "Native", "no_patterns_view", "no_free_text_view", "store_insert"}
    for variant, row in figures.items():
        assert row["rows"] == 3000, row
        assert isinstance(row["cpu_us_per_row"], float) and row["cpu_us_per_row"] > 0, row
        # the same rows make the same parts (one per insert and day) whatever the format or setting
        assert row["parts"] == figures["baseline"]["parts"], (variant, row)
    assert figures["baseline"]["vs_baseline"] == 1.0
    setup = next(r for r in lines if r.get("step") == "setup")
    assert setup["decoder"] in ("rowc", "compiled", "python") and setup["inserts"] == 2


@pytest.mark.slow
def test_http_path_prints_both_ways_for_each_hot_endpoint() -> None:
    lines = _lines(str(BENCH / "http_path.py"), "--requests", "20", "--rounds", "1")
    assert {r["path"] for r in lines} == {"/api/v1/logs", "/loki/api/v1/push", "/v1/logs"}
    for row in lines:
        assert row["scan_us_per_request"] > 0 and row["hot_us_per_request"] > 0, row
