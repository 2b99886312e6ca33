"""A store of the layout before text attributes (``attributes JSON`` + ``attributes_exact``) is
rewritten at its first start by this release (store/attrmigrate.py): every row of the hot and warm
tables reads back as it did (values exact, the patch laid over the JSON column's text; key order
is the old column's, which never kept the order sent), nothing is lost or doubled, the patterns
view feeds the patterns table again, and new rows are stored as text.

The kill -9 variant (the migration cut at every step, then finished by the next start) is
tests/faults/test_attrmigrate_crash.py.
"""

# ruff: noqa: S608 - tests build SQL from the store's own quoted table names
from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.record.values import BIG_INTS, ODD_FLOATS, ODD_KEYS, ODD_STRINGS, typed
from tests.retention.helpers import NOW
from tests.store.oldlayout import make_old_store, old_row

from logharbor.record import normalize, to_wire
from logharbor.server.engine.store.coldstore import LocalCold
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_record, row_to_wire
from logharbor.server.engine.store.tiers import Tiers


def corpus() -> list[dict[str, Any]]:
    """Records with every attribute shape the old layout patched or kept, one message each."""
    values: list[Any] = [*BIG_INTS, *ODD_FLOATS, *ODD_STRINGS, None, {}, [], [True, 1], [None], {"a": {"b": None}},
                         {"%": 1, "x.y": [1.5, None]}, True, 0, 7]
    out = []
    for i, value in enumerate(values):
        key = ODD_KEYS[i % len(ODD_KEYS)]
        out.append({"timestamp": NOW, "service": "mig", "message": f"m{i}", key or "empty": value, "n": i})
    out.append({"timestamp": NOW, "service": "mig", "message": "plain", "user_id": "u-1", "ms": 0.5})
    out.append({"timestamp": NOW, "service": "mig", "message": "bare"})
    return out


def expected(obj: dict[str, Any]) -> dict[str, Any]:
    wire = to_wire(normalize(obj, received_ns=NOW))
    wire.pop("observed_timestamp", None)
    return wire


def read_all(store: EmbeddedStore, table: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for row in store.query(f"SELECT * FROM {table}", {}):
        wire = row_to_wire(row)
        wire.pop("observed_timestamp", None)
        assert wire["message"] not in out, f"{wire['message']} stored twice"
        out[wire["message"]] = wire
    return out


def test_an_old_store_is_rewritten_as_text_with_every_value_kept(tmp_path: Path) -> None:
    objs = corpus()
    hot, warm = objs[::2], objs[1::2]
    cold = [{**o, "message": "cold-" + o["message"]} for o in objs]
    make_old_store(tmp_path / "store", [old_row(o, NOW) for o in hot], [old_row(o, NOW) for o in warm],
                   (tmp_path / "cold" / "2026-06-01" / "old.parquet", [old_row(o, NOW) for o in cold]))
    before = (tmp_path / "cold" / "2026-06-01" / "old.parquet").read_bytes()
    store = EmbeddedStore(tmp_path / "store")
    store.open()
    try:
        tiers = Tiers(store, LocalCold(tmp_path / "cold"))
        tiers.open()
        assert (tmp_path / "cold" / "2026-06-01" / "old.parquet").read_bytes() != before  # rewritten
        got = {}
        for row in store.query(tiers.cold_select(), {}):
            wire = row_to_wire(row)
            wire.pop("observed_timestamp", None)
            got[wire["message"]] = wire
        assert sorted(got) == sorted(o["message"] for o in cold)
        for obj in cold:
            assert typed(got[obj["message"]]) == typed(expected(obj)), obj
        types = {r["table"]: r["type"] for r in store.query(
            "SELECT table, type FROM system.columns WHERE database = currentDatabase() AND name = 'attributes' "
            "AND table IN ('logs', 'logs_warm')", {})}
        assert types == {"logs": "String", "logs_warm": "String"}, types
        tables = {r["name"] for r in store.query("SELECT name FROM system.tables WHERE database = currentDatabase()", {})}
        assert not any(name.endswith("__attrtext") for name in tables), tables
        assert "patterns_mv" in tables
        for table, objects in ((store.hot_table, hot), (tiers.warm, warm)):
            got = read_all(store, table)
            assert sorted(got) == sorted(o["message"] for o in objects)
            for obj in objects:
                assert typed(got[obj["message"]]) == typed(expected(obj)), obj
        moved = store.query(f"SELECT count() AS n FROM {tiers.warm} WHERE move_id = 'm-old'", {})
        assert int(moved[0]["n"]) == len(warm)  # the warm table's own column came along
        # new rows: text as sent, in the order sent; the patterns view counts them
        new = {"timestamp": NOW, "service": "mig", "message": "new", "z": 13.0, "a": None, "b": 2**70}
        store.insert(encode_record(new, received_ns=NOW), dedup_token="new-1")
        text = store.query("SELECT attributes FROM logs WHERE message = 'new'", {})[0]["attributes"]
        assert text == '{"z":13.0,"a":null,"b":1180591620717411303424}'
        counts = store.query("SELECT sum(count) AS n FROM patterns", {})
        assert int(counts[0]["n"]) == len(hot) + 1  # the old rows' counts kept, the new one added, none twice
    finally:
        store.close()
    store = EmbeddedStore(tmp_path / "store")  # a second start has nothing to do
    store.open()
    try:
        assert len(read_all(store, store.hot_table)) == len(hot) + 1
    finally:
        store.close()


def test_old_layout_rows_from_the_wal_are_stored_exactly(tmp_path: Path) -> None:
    """Rows an older server acknowledged and left in its WAL (or set aside and requeued) carry the
    old layout: stored by this release with their exact attributes, not refused for the
    ``attributes_exact`` field nor stored with the JSON column's altered values."""
    objs = corpus()
    store = EmbeddedStore(tmp_path / "store")
    store.open()
    try:
        assert store.insert(b"\n".join(old_row(o, NOW) for o in objs), dedup_token="old-wal-1") == len(objs)
        got = read_all(store, store.hot_table)
        assert sorted(got) == sorted(o["message"] for o in objs)
        for obj in objs:
            assert typed(got[obj["message"]]) == typed(expected(obj)), obj
        assert any(b"attributes_exact" in old_row(o, NOW) for o in objs)  # the corpus has patched rows
    finally:
        store.close()


def test_the_upgrades_copies_hold_no_data_of_their_own() -> None:
    """A damaged definition of an upgrade's copy is set aside at start like a view's (the copy is
    made again, or was already swapped in), not named as a table with data to repair."""
    from logharbor.server.engine.store.attrmigrate import COLD_SUFFIX, MIGRATING_SUFFIX
    from logharbor.server.engine.store.startcheck import holds_no_data

    assert holds_no_data("logs" + MIGRATING_SUFFIX) and holds_no_data("logs_warm" + MIGRATING_SUFFIX)
    assert holds_no_data("logs" + COLD_SUFFIX)
    assert not holds_no_data("logs") and not holds_no_data("logs_warm")
