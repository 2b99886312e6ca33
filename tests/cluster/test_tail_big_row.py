"""A live tail round on a ClickHouse server (the HTTP double, which caps a form field at 128 KiB
as ClickHouse does) with a record larger than that: the round's rows go as external data
(ClickHouseStore.run_on_rows), so the big record is matched with the others. Sent as a form field
it was refused, the whole round failed, and every record of it was dropped for every client."""

from __future__ import annotations

from tests.retention.helpers import NOW

from logharbor import exactjson
from logharbor.server.engine.store.clickhouse import ClickHouseStore
from logharbor.server.engine.store.rows import encode_record
from logharbor.server.features.tail.filter import (
    BatchRunner,
    BatchStructure,
    TailFilter,
    compile_filter_only,
    run_round,
)

from .chdouble import MAX_FIELD_VALUE_SIZE
from .conftest import Double


def test_a_tail_round_with_a_record_above_the_field_cap_matches_it(chdouble: Double) -> None:
    big = "y" * (MAX_FIELD_VALUE_SIZE + 10_000)
    objs = [{"timestamp": NOW, "service": "big", "message": "before", "n": 1},
            {"timestamp": NOW, "service": "big", "message": "huge", "blob": big, "v": -0.0},
            {"timestamp": NOW, "service": "other", "message": "not this one"},
            {"timestamp": NOW, "service": "big", "message": "after"}]
    payload = b"\n".join(encode_record(o, received_ns=NOW) for o in objs)
    store = ClickHouseStore(chdouble.url("tail_big"))
    store.open()
    try:
        structure = BatchStructure.from_columns(store.query("DESCRIBE TABLE logs", {}))
        condition, params, _ = compile_filter_only("service:big")
        matched = run_round(BatchRunner(store), structure, payload,
                            [([TailFilter("service:big", condition, params)], None, [True])])
    finally:
        store.close()
    (per_filter,) = matched
    (lines,) = per_filter
    assert [row for row, _ in lines] == [0, 1, 3]
    got = {exactjson.loads(line)["message"]: exactjson.loads(line) for _, line in lines if line}
    assert sorted(got) == ["after", "before", "huge"]
    assert got["huge"]["blob"] == big and repr(got["huge"]["v"]) == "-0.0"
