"""The live tail's batch read (engine/store/sql/tail.py): a batch of rows read as the logs table
would hold them — the attributes object as its exact text, the promoted ``attr_<key>`` columns
computed as the table computes them — on a store's own ``run_on_rows``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.retention.helpers import NOW

from logharbor.server.engine.store.attributes import PROMOTED
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_record, row_to_record
from logharbor.server.engine.store.sql.retention import quarantine_match_sql
from logharbor.server.engine.store.sql.tail import round_sql


def test_a_batch_reads_text_and_promoted_columns_as_the_table_does(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store")
    store.open()
    try:
        columns = store.query(f"DESCRIBE TABLE {store.table}", {})
        structure = ", ".join(f"`{c['name']}` {c['type']}" for c in columns)
        objs = [{"timestamp": NOW, "service": "t", "message": f"m{i}", "user_id": u, "duration_ms": d,
                 "z": 13.0, "n": None}
                for i, (u, d) in enumerate([("u-1", 13.0), (7, 1500), (None, "2000"), ({"a": 1}, None)])]
        rows = b"\n".join(encode_record(o, received_ns=NOW) for o in objs)
        store.insert(rows, dedup_token="tail-1")
        conditions = ["`attr_user_id` = 'u-1'", "toFloat64OrNull(`attr_duration_ms`) > 1000",
                      "`attr_user_id` = '{\"a\":1}'", "`attr_user_id` IS NULL"]
        sql, params = round_sql(conditions, None)
        got = store.run_on_rows(sql, {**params, "tail_structure": structure, "tail_rows": rows.decode()})
        flags = {r["message"]: [bool(r[f"__tail_m{i}"]) for i in range(len(conditions))] for r in got}
        # the same conditions on the stored table: a tail matches what a search matches
        for i, condition in enumerate(conditions):
            stored = {r["message"] for r in store.query(f"SELECT message FROM logs WHERE {condition}", {})}  # noqa: S608
            assert {m for m, f in flags.items() if f[i]} == stored, condition
        assert flags["m0"][0] and flags["m1"][1] and flags["m2"][1] and flags["m3"][2] and flags["m2"][3]
        for row in got:  # the text as sent, read back exactly
            obj = objs[int(row["message"][1:])]
            assert list(row_to_record(row)["attributes"].items()) == [
                (k, v) for k, v in obj.items() if k not in ("timestamp", "service", "message")]
        assert set(PROMOTED.values()) <= set(got[0])
    finally:
        store.close()


def test_quarantined_lines_match_on_promoted_columns(tmp_path: Path) -> None:
    """A delete-by-query's scrub of quarantined lines (sql/retention.py) reads them with the
    stored columns only; a condition on a promoted column still finds its lines."""
    store = EmbeddedStore(tmp_path / "store")
    store.open()
    try:
        columns = store.query("SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                              "AND table = 'logs' AND default_kind = '' ORDER BY position", {})
        structure = ", ".join(f"{c['name']} {c['type']}" for c in columns) + ", lh_line UInt32"
        lines = [encode_record({"timestamp": NOW, "service": "q", "message": f"m{i}", "user_id": f"u-{i % 2}"},
                               received_ns=NOW)[:-1] + f',"lh_line":{i}}}'.encode() for i in range(4)]
        sql = quarantine_match_sql("`attr_user_id` = {u:String}", line_column="lh_line")
        got = store.run_on_rows(sql, {"u": "u-1", "tail_structure": structure,
                                      "tail_rows": b"\n".join(lines).decode()})
        assert sorted(int(r["i"]) for r in got) == [1, 3]
    finally:
        store.close()


class _RecordingConnection:
    """A chDB connection that notes the parameters of every query it runs."""

    def __init__(self, conn: Any, seen: list[dict[str, Any]]) -> None:
        self.conn, self.seen = conn, seen

    def query(self, sql: str, fmt: str, params: dict[str, Any]) -> Any:
        self.seen.append(params)
        return self.conn.query(sql, fmt, params=params)

    def close(self) -> None:
        self.conn.close()


def test_a_rounds_rows_reach_the_engine_in_memory_not_as_a_parameter(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """As a query parameter, a round's rows were escaped in Python and unescaped and parsed as a
    literal by the engine: ~8x the engine's own work per row, so at 20k records/s the live tail
    fell seconds behind. The rows go in a memory file; the answer is the parameter path's."""
    import chdb

    seen: list[dict[str, Any]] = []
    connect = chdb.connect
    monkeypatch.setattr(chdb, "connect", lambda *a, **k: _RecordingConnection(connect(*a, **k), seen))
    store = EmbeddedStore(tmp_path / "store")
    store.open()
    try:
        structure = ", ".join(f"`{c['name']}` {c['type']}" for c in store.query(
            "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'logs' "
            "AND default_kind = '' ORDER BY position", {}))
        odd = ["tab\there", "back\\slash \\n not a newline", "new\nline", "nul\x00", "quote ' \" }", "ünï 😀"]
        objs = [{"timestamp": NOW, "service": "t", "message": f"m{i} {odd[i % len(odd)]}", "k": odd[i % 3]}
                for i in range(5000)]
        rows = b"\n".join(encode_record(o, received_ns=NOW) for o in objs).decode()
        sql, params = round_sql(["message LIKE '%\\\\\\\\%'", "service = 't'"], None)
        batch = {**params, "tail_structure": structure, "tail_rows": rows}
        got = store.run_on_rows(sql, batch)
        assert seen and max(len(str(v)) for p in seen for v in p.values()) < 4096  # no rows in a parameter
        assert got == store.query(sql, batch)  # the reader's connection takes them as a parameter
        assert [r["__tail_row"] for r in got] == list(range(5000))  # numbered in arrival order
        assert [r["message"] for r in got if r["__tail_m0"]] == [o["message"] for o in objs if "\\" in o["message"]]
        assert store.run_on_rows(sql, {**batch, "tail_rows": ""}) == []  # a new filter's trial round
        assert len(store.run_on_rows(sql, {**batch, "tail_rows": rows[:rows.index("\n")]})) == 1  # nothing left over
    finally:
        store.close()
