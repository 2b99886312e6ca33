"""A delete-by-query's scrub of the WAL's quarantine on a ClickHouse server (the HTTP double, which
caps a parameter at 128 KiB as ClickHouse does): quarantined lines above that in total, and one
line above it alone, are matched in the engine (sent as external data, in pieces), so a range
filter (no value to match as text) still finds every matching record; before, the one parameter was refused and every line fell back to text matching,
leaving the matching records in the quarantine (a requeue would have stored them again)."""

from __future__ import annotations

from pathlib import Path

from tests.retention.test_scrub_attributes import AT

from logharbor.record import normalize
from logharbor.server.engine.refused import RefusedRows, read_refused
from logharbor.server.engine.store.clickhouse import ClickHouseStore
from logharbor.server.engine.store.rows import encode_row
from logharbor.server.features.query import compile_filter
from logharbor.server.features.retention.local import scrub_quarantine
from logharbor.server.features.retention.redact import Redactor

from .chdouble import MAX_FIELD_VALUE_SIZE
from .conftest import Double


def test_a_quarantine_above_the_parameter_cap_is_matched_in_the_engine(chdouble: Double, tmp_path: Path) -> None:
    rows = [encode_row(normalize({"timestamp": AT, "service": "scrub", "message": f"line {i} " + "x" * 1000,
                                  "took_ms": 150 if i % 3 == 0 else 50}, received_ns=AT)) for i in range(300)]
    # one line above the cap alone: it goes as external data, not as a parameter
    rows[5] = encode_row(normalize({"timestamp": AT, "service": "scrub", "message": "z" * (MAX_FIELD_VALUE_SIZE + 9),
                                    "took_ms": 151}, received_ns=AT))
    assert sum(len(r) for r in rows) > 2 * MAX_FIELD_VALUE_SIZE
    store = ClickHouseStore(chdouble.url("scrub_ch"))
    store.open()
    try:
        quarantine = tmp_path / "quarantine"
        path = RefusedRows(quarantine / "refused").keep(
            "wal-1-300", 1, 300, [(i + 1, row, "Code: 41.") for i, row in enumerate(rows)])
        columns = [(r["name"], r["type"]) for r in store.query(
            "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'logs' "
            "AND default_kind NOT IN ('MATERIALIZED', 'ALIAS') ORDER BY position", {})]
        cond, params = compile_filter("took_ms:>100")
        figures = scrub_quarantine(quarantine, store, columns, cond, params, Redactor([]))
    finally:
        store.close()
    assert figures["unreadable_lines"] == 0 and figures["lines_removed"] == 101, figures
    assert read_refused(path, None) == [r for i, r in enumerate(rows) if i % 3 and i != 5]
