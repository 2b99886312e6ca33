"""The cross-server tail feed: live tail on one server sees what every server ingested.

Servers side by side share one ClickHouse store, but each tail hub hears only its own ingest
(``Ingestor.add_listener``). The feed closes the gap through the shared table itself, with no
extra moving part: every ``interval_s`` it reads the rows whose ``observed_timestamp`` (set by the
receiving server, shared by all the records of one request) is past its cursor, drops those this
server ingested itself (it remembers the receive times of its own recent writes) and hands the
rest to :meth:`TailHub.publish` exactly as a local write — so filtering, queues and drop markers
are the hub's, unchanged. It runs only while someone is tailing.

Rows of another server reach the table only after that server's batcher flushed them, so the
cursor trails the clock by ``settle_s`` (default: the batcher's age limit plus one second); a
flush later than that is not replayed to tail clients (it is still searchable). Remote records
therefore reach the screen about ``settle_s + interval_s`` after they were written, local ones at
once. Why not PostgreSQL NOTIFY: its 8 000-byte payload limit cannot carry ingest batches, and
a notification would still need this read to fetch the rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from typing import Protocol

import orjson

from logharbor.record import parse_timestamp
from logharbor.server.engine.store.base import Store, StoreError
from logharbor.server.engine.store.sql.tail import received_sql

__all__ = ["TailFeed"]

log = logging.getLogger("logharbor.server.features.tail.feed")

_OBSERVED = re.compile(rb'"observed_timestamp":"(\d+)\.(\d{9})"')
_NS = 1_000_000_000


class _Hub(Protocol):
    clients: int

    def publish(self, payload: bytes) -> None: ...


class TailFeed:
    """Polls the shared table for other servers' rows and publishes them to the local tail hub."""

    def __init__(self, store: Store, hub: _Hub, *, interval_s: float = 0.5, settle_s: float = 2.0,
                 max_rows: int = 100_000) -> None:
        self.store = store
        self.hub = hub
        self.interval_s = interval_s
        self.settle_ns = int(settle_s * _NS)
        self.max_rows = max_rows
        self.cursor_ns = 0
        self._own: set[int] = set()
        self._own_order: deque[int] = deque()
        self._task: asyncio.Task[None] | None = None
        self.published_rows = 0

    def note_local(self, payload: bytes) -> None:
        """Ingest listener: remember the receive times of this server's own writes."""
        for seconds, frac in set(_OBSERVED.findall(payload)):
            ns = int(seconds) * _NS + int(frac)
            if ns not in self._own:
                self._own.add(ns)
                self._own_order.append(ns)
        horizon = time.time_ns() - 10 * self.settle_ns - 60 * _NS
        while self._own_order and self._own_order[0] < horizon:
            self._own.discard(self._own_order.popleft())

    async def start(self) -> None:
        """Start polling from now (the past is for search, not for tail)."""
        self.cursor_ns = time.time_ns() - self.settle_ns
        self._task = asyncio.create_task(self._loop(), name="logharbor-tail-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            if not self.hub.clients:
                self.cursor_ns = time.time_ns() - self.settle_ns  # nobody listens: nothing to catch up
                continue
            try:
                payload = await asyncio.to_thread(self.poll, time.time_ns())
            except StoreError as exc:
                log.warning("tail feed: cannot read new rows: %s", exc)
                continue
            if payload:
                self.hub.publish(payload)

    def poll(self, now_ns: int) -> bytes:
        """Rows of other servers received in ``(cursor, now - settle]``, as JSONEachRow; moves the cursor."""
        upto = now_ns - self.settle_ns
        if upto <= self.cursor_ns:
            return b""
        # the table name comes from the store (quoted by sqlsafe); times are parameters
        rows = self.store.query(received_sql(self.store.hot_table),
                                {"lo": self.cursor_ns, "hi": upto, "n": self.max_rows})
        lines: list[bytes] = []
        last = self.cursor_ns
        for row in rows:
            observed = _ns_of(row.get("observed_timestamp", ""))
            last = max(last, observed)
            if observed in self._own:
                continue
            lines.append(orjson.dumps(row))
        self.cursor_ns = last if len(rows) >= self.max_rows else upto
        self.published_rows += len(lines)
        return b"\n".join(lines)


def _ns_of(text: str) -> int:
    """'2026-11-25 02:40:00.123456789' (DateTime64(9) as the engine prints it) as ns."""
    try:
        return parse_timestamp(text)
    except (ValueError, TypeError):
        return 0
