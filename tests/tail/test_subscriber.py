"""A tail client's bounded queue: what does not fit becomes a dropped marker exactly where the gap is."""

from __future__ import annotations

import asyncio

from logharbor.server.features.tail.filter import BatchStructure, TailFilter, compile_tail_filter, round_sql
from logharbor.server.features.tail.hub import Subscriber


def make(capacity: int) -> Subscriber:
    return Subscriber(TailFilter("*", None, {}), capacity, after_seq=0)


def test_overflow_becomes_one_marker_where_the_gap_is() -> None:
    async def scenario() -> list[object]:
        sub = make(3)
        sub.offer([b"a", b"b", b"c", b"d", b"e"])  # d and e do not fit
        first = await sub.take(max_items=1)  # the client reads one: there is room again
        sub.offer([b"f"])  # after the gap
        return first + await sub.take() + await sub.take(timeout=0.01)

    assert asyncio.run(scenario()) == [b"a", b"b", b"c", 2, b"f"]


def test_a_client_that_falls_behind_and_catches_up_gets_the_count_at_the_end() -> None:
    async def scenario() -> tuple[list[object], int]:
        sub = make(2)
        sub.offer([b"1", b"2", b"3", b"4"])
        sub.note_dropped(10)  # the hub skipped a write before filtering it
        return await sub.take(), sub.dropped_total

    items, total = asyncio.run(scenario())
    assert items == [b"1", b"2", 12]
    assert total == 12


def test_take_returns_nothing_on_timeout_and_ends_when_closed() -> None:
    async def scenario() -> tuple[list[object], list[object]]:
        sub = make(5)
        idle = await sub.take(timeout=0.01)
        sub.close()
        return idle, await sub.take()

    assert asyncio.run(scenario()) == ([], [])


def test_filters_share_one_query_with_their_own_parameter_names() -> None:
    first = compile_tail_filter("service:checkout AND level:ERROR", prefix="f1_")
    second = compile_tail_filter("service:search", prefix="f2_")
    everything = compile_tail_filter("  ")
    assert everything.condition is None and everything.text == "*"
    sql, params = round_sql([first, second, everything], ("tenant = {scope_tenant:String}", {"scope_tenant": "acme"}))
    assert set(params) == {*first.params, *second.params, "scope_tenant"}
    assert all(name.startswith(("f1_", "f2_", "scope_")) for name in params)
    assert "checkout" not in sql and "search" not in sql  # values are parameters, never SQL text
    assert "(1) AS __tail_m2" in sql


def test_json_columns_are_read_as_text_unless_a_filter_looks_inside() -> None:
    structure = BatchStructure.from_columns([{"name": "level", "type": "LowCardinality(String)"},
                                             {"name": "attributes", "type": "JSON"}])
    assert structure.light == "`level` LowCardinality(String), `attributes` String"
    plain = compile_tail_filter("level:ERROR")
    inside = compile_tail_filter("user_id:u-1")
    assert not structure.needs_full([plain], None)
    assert structure.needs_full([plain, inside], None)
    assert structure.decode({"attributes": '{"a":1}'}) == {"attributes": {"a": 1}}
    assert structure.decode({"attributes": ""}) == {"attributes": {}}


def test_the_queue_is_bounded_in_bytes_too() -> None:
    async def scenario() -> tuple[list[object], int]:
        sub = Subscriber(TailFilter("*", None, {}), capacity=100, after_seq=0, max_bytes=10)
        sub.offer([b"12345", b"67890", b"x", b"y"])  # 10 bytes fill it: x and y do not fit
        items = await sub.take()
        return items, sub.bytes

    assert asyncio.run(scenario()) == ([b"12345", b"67890", 2], 0)


def test_a_batch_is_cut_into_whole_rows_for_remote_stores() -> None:
    from logharbor.server.features.tail.filter import split_batch

    rows = [b'{"message":"%d"}' % i + b"x" * (i % 7) for i in range(50)]
    payload = b"\n".join(rows)
    assert split_batch(payload, None) == [(payload, 0)]
    pieces = split_batch(payload, 100)
    assert len(pieces) > 1
    rebuilt = [row for chunk, _ in pieces for row in chunk.split(b"\n")]
    assert rebuilt == rows  # every row once, in order, never cut
    for chunk, first in pieces:
        assert len(chunk) <= 100
        assert chunk.split(b"\n")[0] == rows[first]  # the offset names the piece's first row
    huge = split_batch(b"a" * 300 + b"\nb", 100)
    assert huge == [(b"a" * 300, 0), (b"b", 1)]  # a row over the limit travels alone
