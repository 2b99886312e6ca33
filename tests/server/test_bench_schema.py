"""bench/schema.py keeps working: every attribute-storage variant prints all its figures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

FIGURES = ("insert_cpu_us", "merge_cpu_us", "bytes_per_record", "attr_bytes_per_record", *(
    f"{q}_{k}" for q in ("trace", "by_error_code", "user_id", "rare_word", "duration_gt_1000", "by_logger")
    for k in ("ms", "cpu_ms")))


@pytest.mark.slow
def test_schema_bench_prints_every_variant_with_all_figures() -> None:
    script = Path(__file__).resolve().parents[2] / "bench" / "schema.py"
    out = subprocess.run([sys.executable, str(script), "--records", "2000", "--rounds", "1", "--runs", "1"],
                         capture_output=True, text=True, timeout=240, check=True).stdout
    lines = [orjson.loads(line) for line in out.splitlines()]
    figures = {r["variant"]: r for r in lines if "variant" in r and r.get("step") != "exact"}
    exact = {r["variant"]: r for r in lines if r.get("step") == "exact"}
    assert set(figures) == set(exact) == {"json", "json_typed", "map", "string"}
    for variant, row in figures.items():
        assert row["records"] == 2000, row
        missing = [f for f in FIGURES if not isinstance(row.get(f), int | float) or row[f] < 0]
        assert not missing, (variant, missing)
        assert row["insert_cpu_us"] > 0 and row["bytes_per_record"] > 0, row
    # the text-keeping variants give back what was sent; the JSON column alone does not (hence its patch)
    for variant in ("map", "string"):
        assert exact[variant]["big_int"] and exact[variant]["float_one"], exact[variant]
    assert not exact["json"]["float_one"]
