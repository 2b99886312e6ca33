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


@pytest.mark.slow
def test_codecs_bench_prints_each_variant_with_its_columns() -> None:
    """bench/schema_codecs.py: one line per variant, bytes of every column and index it stores."""
    script = Path(__file__).resolve().parents[2] / "bench" / "schema_codecs.py"
    out = subprocess.run([sys.executable, str(script), "--records", "2000", "--rounds", "1",
                          "--variants", "shipped,sort_ts"],
                         capture_output=True, text=True, timeout=240, check=True).stdout
    rows = {r["variant"]: r for r in map(orjson.loads, out.splitlines()) if "variant" in r}
    assert set(rows) == {"shipped", "sort_ts"}
    for row in rows.values():
        assert row["records"] == 2000 and row["parts"] >= 1, row
        # 2000 rows make a Compact part (one file): its columns are listed, their bytes are the file's
        assert row["bytes_per_record"] > 0 and "attributes" in row["columns"], row
        assert row["insert_cpu_us"] > 0 and "idx_message_lower" in row["indexes"], row
