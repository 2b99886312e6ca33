"""A delete-by-query finds the refused rows of the WAL's quarantine by its filter in the engine,
attributes included: the rows are read as the logs table's stored columns (``attributes`` is the
JSON text; the promoted ``attr_*`` columns are not in a row, so the filter must not need them),
and nothing is left ``unreadable`` (which would mean matching by the filter's values as text only,
and a range like ``took_ms:>100`` has no value to match as text)."""

from __future__ import annotations

from pathlib import Path

from logharbor.record import normalize
from logharbor.server.engine.refused import RefusedRows, read_refused
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_row
from logharbor.server.features.query import compile_filter
from logharbor.server.features.retention.local import scrub_quarantine
from logharbor.server.features.retention.redact import Redactor

SENT = [
    {"message": "slow one", "took_ms": 150.0, "user": {"id": "u-1"}},  # 13.0-style float, nested id
    {"message": "fast one", "took_ms": 50, "user.id": "u-2"},          # a literal dotted key
    {"message": "slow as text", "took_ms": "250"},                      # a number's text compares as a number
    {"message": "no took_ms"},
    {"message": "with a user", "user_id": "u-9"},  # user_id is promoted in the table, not in a row
    {"message": "big", "took_ms": 500, "n": 2**70},  # orjson cannot read it: it was text-only before
]
AT = 1_793_534_400 * 10**9
ROWS = [encode_row(normalize({"timestamp": AT, "service": "scrub", **sent}, received_ns=AT)) for sent in SENT]
#: a row an older release refused: the JSON column's object plus the patch (attributes_exact)
ROWS.append(ROWS[0].replace(b'"attributes":{"took_ms":150.0,', b'"attributes":{"took_ms":150,')[:-1]
            + b',"attributes_exact":"{\\"took_ms\\":150.0}"}')


def _scrub(tmp_path: Path, store: EmbeddedStore, q: str) -> tuple[dict[str, int], list[bytes]]:
    quarantine = tmp_path / q.replace(":", "_").replace(">", "gt") / "quarantine"
    path = RefusedRows(quarantine / "refused").keep(
        "wal-1-7", 1, 7, [(i + 1, row, "Code: 41.") for i, row in enumerate(ROWS)])
    columns = [(r["name"], r["type"]) for r in store.query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = {t:String} "
        "AND default_kind NOT IN ('MATERIALIZED', 'ALIAS') ORDER BY position", {"t": store.table_name})]
    cond, params = compile_filter(q)
    figures = scrub_quarantine(quarantine, store, columns, cond, params, Redactor([]))
    return figures, read_refused(path, None)


def test_refused_rows_are_matched_on_their_attributes_in_the_engine(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store")
    store.open()
    try:
        rows = ROWS
        figures, left = _scrub(tmp_path, store, "took_ms:>100")
        assert figures["unreadable_lines"] == 0 and figures["lines_removed"] == 4, figures
        assert left == [rows[1], rows[3], rows[4]]
        figures, left = _scrub(tmp_path, store, "user.id:u-1")  # the nested spelling; u-2 is the literal key
        assert figures["unreadable_lines"] == 0 and figures["lines_removed"] == 2, figures
        assert left == [rows[1], rows[2], rows[3], rows[4], rows[5]]
        figures, left = _scrub(tmp_path, store, "user_id:u-9")
        assert figures["unreadable_lines"] == 0 and figures["lines_removed"] == 1, figures
        assert left == rows[:4] + rows[5:]
    finally:
        store.close()
