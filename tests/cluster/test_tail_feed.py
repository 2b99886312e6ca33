"""The cross-server tail feed over the shared table (through the ClickHouse double): it hands on
other servers' rows once, leaves out this server's own, and trails the clock by ``settle``."""

from __future__ import annotations

import orjson
import pytest

from logharbor.record import normalize
from logharbor.server.engine.store.clickhouse import ClickHouseStore
from logharbor.server.engine.store.rows import encode_row
from logharbor.server.features.tail.feed import TailFeed

from .conftest import Double

pytestmark = pytest.mark.e2e  # several servers on one ClickHouse

S = 10**9
T0 = 1_800_000_000 * S


class Hub:
    clients = 1

    def __init__(self) -> None:
        self.published: list[bytes] = []

    def publish(self, payload: bytes) -> None:
        self.published.append(payload)


def rows(received_ns: int, *messages: str) -> bytes:
    return b"\n".join(encode_row(normalize({"message": m, "service": "feed"}, received_ns=received_ns))
                      for m in messages)


def test_feed_hands_on_other_servers_rows_once(chdouble: Double) -> None:
    store = ClickHouseStore(chdouble.url("feed"), writer_id="feedtest")
    store.open()
    try:
        feed = TailFeed(store, Hub(), settle_s=2.0)
        feed.cursor_ns = T0
        mine = rows(T0 + 1 * S, "mine 1", "mine 2")
        feed.note_local(mine)  # what this server's ingest listener saw
        store.insert(mine, dedup_token="wal-1-1")
        store.insert(rows(T0 + 1 * S + 5, "theirs 1", "theirs 2"), dedup_token="wal-2-2")  # another server
        store.insert(rows(T0 + 9 * S, "too recent"), dedup_token="wal-3-3")
        payload = feed.poll(T0 + 5 * S)  # reads (T0, T0 + 3 s]
        got = [orjson.loads(line)["message"] for line in payload.splitlines()]
        assert sorted(got) == ["theirs 1", "theirs 2"]
        assert feed.cursor_ns == T0 + 3 * S
        assert feed.poll(T0 + 5 * S) == b""  # nothing twice
        later = [orjson.loads(line)["message"] for line in feed.poll(T0 + 12 * S).splitlines()]
        assert later == ["too recent"]
        assert feed.published_rows == 3
    finally:
        store.close()
