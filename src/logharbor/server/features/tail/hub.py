"""Live tail's hub: every written record filtered on the server for the subscribers of
``GET /api/v1/tail?q=…`` (whose WebSocket and Server-Sent Events transports are ``routes.py``).

Every durable ingest write reaches :meth:`TailHub.publish` as the store rows it wrote (JSONEachRow).
That call only appends the bytes to a pending list, so ingest never waits for a tail client. One
dispatcher task takes everything pending and runs one engine query per round over that batch —
``FROM format(JSONEachRow, <table structure>, <the batch>)`` with the batch as a query parameter —
whose SELECT has one flag column per distinct filter, each the query language's own compiled
condition: the tail has exactly the semantics of a search, no second filter engine, and the
batch is parsed once however many clients there are (clients with the same query share a flag).
The engine work runs on one thread beside the event loop (a dedicated chDB connection when the
store is embedded, so a long search holding the store's readers cannot hold up the tail). While
it runs, new writes pile up and the next round takes them all: batches grow with load.

Each client has a bounded queue. When it is full, newer records for that client are counted, not
queued; the client receives ``{"dropped": N}`` in their place as soon as it reads again, and no
other client and no ingest request ever waits for it. If the dispatcher itself falls more than
``max_pending_bytes`` behind, the oldest writes are skipped and every client is told the same way
(that N counts records that were never filtered, so some may not have matched).

Wire form: WebSocket text messages, each one JSON object: ``{"subscribed": {"q": …}}`` first, then
one record per message (the wire form of DESIGN §2, always with ``timestamp``) or a ``{"dropped": N}``
marker. SSE: ``event: subscribed``, then ``data:`` lines with one record each, ``event: dropped``
for markers, and a ``: keepalive`` comment every ``keepalive_s``. ``Accept: application/x-ndjson``
streams the same as NDJSON lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from logharbor.server.engine.store.base import Store, StoreError
from logharbor.server.errors import ApiError
from logharbor.server.features.tail.filter import (
    BatchRunner,
    BatchStructure,
    Scope,
    TailFilter,
    compile_tail_filter,
    round_sql,
    run_round,
)

__all__ = ["Item", "Subscriber", "TailHub"]

log = logging.getLogger("logharbor.server.features.tail.hub")

MiB = 1024 * 1024

#: a queued item: the JSON of one record, or the number of records dropped at that point
Item = bytes | int


class Subscriber:
    """One client: a queue bounded in records and bytes, and a count of what did not fit."""

    def __init__(self, filt: TailFilter, capacity: int, after_seq: int, max_bytes: int = 4 * 1024 * 1024,
                 allowed: Callable[[], bool] | None = None) -> None:
        self.filter = filt
        #: whether the client's key may still read (None: no key, auth is off); asked before
        #: anything is handed out, so a key revoked or expired while its tail is open stops it
        self.allowed = allowed
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.after_seq = after_seq  # only writes published after this one are for this client
        self.items: deque[Item] = deque()
        self.bytes = 0  # queued record bytes (shared with other clients of the same query)
        self.dropped_pending = 0
        self.dropped_total = 0
        self.delivered = 0
        self.closed = False
        self._wake = asyncio.Event()

    @property
    def full(self) -> bool:
        return len(self.items) >= self.capacity or self.bytes >= self.max_bytes

    def offer(self, lines: list[bytes | None]) -> None:
        """Queue records (never blocks); what does not fit, or was not kept (None), is counted."""
        items = self.items
        for line in lines:
            if line is None or len(items) >= self.capacity or self.bytes >= self.max_bytes:
                self.dropped_pending += 1
                self.dropped_total += 1
                continue
            if self.dropped_pending:
                items.append(self.dropped_pending)
                self.dropped_pending = 0
            items.append(line)
            self.bytes += len(line)
        if items or self.dropped_pending:
            self._wake.set()

    def note_dropped(self, count: int) -> None:
        """Records skipped before filtering (the hub fell behind) are reported like overflow."""
        self.dropped_pending += count
        self.dropped_total += count
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    async def take(self, max_items: int = 512, timeout: float | None = None) -> list[Item]:
        """The next items in order (a dropped count where records were lost); [] on timeout."""
        while not self.items and not self.dropped_pending and not self.closed:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                return []
        if self.allowed is not None and not self.closed and not self.allowed():
            self.close()  # the key was revoked or has expired since the tail opened
        if self.closed:
            return []
        out: list[Item] = []
        while self.items and len(out) < max_items:
            item = self.items.popleft()
            if isinstance(item, bytes):
                self.bytes -= len(item)
            out.append(item)
        if not self.items and self.dropped_pending:
            out.append(self.dropped_pending)
            self.dropped_pending = 0
        self.delivered += sum(1 for item in out if isinstance(item, bytes))
        return out


@dataclass
class _Group:
    filter: TailFilter
    scope: Scope
    subscribers: list[Subscriber] = field(default_factory=list)


class TailHub:
    """Fans durable writes out to tail clients, each through its compiled filter."""

    def __init__(self, store: Store, *, queue_size: int = 2000, max_clients: int = 1000,
                 max_pending_bytes: int = 64 * MiB, round_timeout_s: float | None = None) -> None:
        self.store = store
        #: the engine's time limit for one filter round (the server's query_timeout_s)
        self.round_timeout_s = round_timeout_s
        self.queue_size = queue_size
        self.max_clients = max_clients
        self.max_pending_bytes = max_pending_bytes
        self._groups: dict[tuple[str, str], _Group] = {}
        self._count = 0
        self._filters = 0
        self._pending: list[tuple[int, bytes]] = []
        self._pending_bytes = 0
        self._seq = 0
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="logharbor-tail")
        self._runner: BatchRunner | None = None
        self._structure = BatchStructure("", "", ())
        self.rounds = 0
        self.round_seconds = 0.0
        self.skipped_rows = 0
        self._gone = [0, 0]  # delivered, dropped: of clients that have left
        self._chained: list[tuple[int, Any]] = []

    async def start(self) -> None:
        """Read the table's structure, open the runner and start dispatching."""
        loop = asyncio.get_running_loop()
        columns = await loop.run_in_executor(self._executor, self.store.query,
                                             f"DESCRIBE TABLE {self.store.table}", {})
        # names and types as the engine itself reports them; passed as a parameter, not as SQL
        self._structure = BatchStructure.from_columns(columns)
        self._runner = await loop.run_in_executor(
            self._executor, lambda: BatchRunner(self.store, timeout_s=self.round_timeout_s))
        self._task = asyncio.create_task(self._dispatch(), name="logharbor-tail")
        self._end_streams_on_signals(loop)

    def _end_streams_on_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        """End every stream as soon as the process is asked to stop (SIGINT, SIGTERM).

        The HTTP server waits for open responses before it runs the lifespan shutdown, and a tail
        never ends by itself, so without this each open tail would hold a restart for the whole
        graceful-shutdown timeout. The server's own handler still runs, after ours.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue  # nobody handles it: the process just ends

            def handler(signum: int, frame: Any, previous: Any = previous) -> None:
                loop.call_soon_threadsafe(self.end_streams)
                previous(signum, frame)

            signal.signal(sig, handler)
            self._chained.append((sig, previous))

    def end_streams(self) -> None:
        """Close every subscriber: their streams finish what is queued and end."""
        for group in self._groups.values():
            for sub in group.subscribers:
                sub.close()

    async def stop(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig, previous in self._chained:
                signal.signal(sig, previous)
        self._chained.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.end_streams()
        if self._runner is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._runner.close)
        self._executor.shutdown(wait=True)

    @property
    def clients(self) -> int:
        return self._count

    def live_values(self) -> dict[str, float]:
        """Gauges for ``/metrics`` (``ServerMetrics.watch``): clients, work done, records lost."""
        subs = [sub for group in self._groups.values() for sub in group.subscribers]
        return {
            "logharbor_tail_clients": float(self._count),
            "logharbor_tail_filters": float(len(self._groups)),
            "logharbor_tail_pending_bytes": float(self._pending_bytes),
            "logharbor_tail_rounds_total": float(self.rounds),
            "logharbor_tail_round_seconds_total": self.round_seconds,
            "logharbor_tail_delivered_records_total": float(self._gone[0] + sum(s.delivered for s in subs)),
            "logharbor_tail_dropped_records_total": float(self._gone[1] + sum(s.dropped_total for s in subs)),
            "logharbor_tail_skipped_records_total": float(self.skipped_rows),
        }

    def publish(self, payload: bytes) -> None:
        """Ingest listener: hand a durable write to the dispatcher (never blocks)."""
        if not self._count or not payload:
            return
        self._seq += 1
        self._pending.append((self._seq, payload))
        self._pending_bytes += len(payload)
        while self._pending_bytes > self.max_pending_bytes and len(self._pending) > 1:
            seq, old = self._pending.pop(0)
            self._pending_bytes -= len(old)
            rows = old.count(b"\n") + 1
            self.skipped_rows += rows
            for group in self._groups.values():
                for sub in group.subscribers:
                    if sub.after_seq < seq:
                        sub.note_dropped(rows)
        self._ready.set()

    async def subscribe(self, text: str, scope: Scope = None, allowed: Callable[[], bool] | None = None
                        ) -> Subscriber:
        """A new client for writes published from now on; 400 for a bad query, 503 when full.
        ``allowed`` says whether the client's key is still valid (see :class:`Subscriber`).

        A new filter is tried once on an empty batch, so what only the engine can refuse (an
        RE2 feature Python accepts) is a 400 here and never breaks a round shared with others.
        """
        if self._count >= self.max_clients:
            raise ApiError(503, "too_many_tail_clients",
                           f"this server already serves {self.max_clients} tail clients")
        key = (text.strip() or "*", repr(scope))
        group = self._groups.get(key)
        if group is None:
            self._filters += 1
            filt = compile_tail_filter(text, prefix=f"f{self._filters}_")
            sql, params = round_sql([filt], scope)
            params.update(tail_structure=self._structure.full, tail_rows="")
            assert self._runner is not None, "the hub has not started"
            try:
                await asyncio.get_running_loop().run_in_executor(self._executor, self._runner.query,
                                                                 sql, params)
            except StoreError as exc:
                raise ApiError(400, "invalid_query", "the engine cannot run this filter",
                               detail=str(exc).splitlines()[0][:300]) from None
            group = self._groups.setdefault(key, _Group(filt, scope))
        sub = Subscriber(group.filter, self.queue_size, self._seq, allowed=allowed)
        group.subscribers.append(sub)
        self._count += 1
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        sub.close()
        for key, group in list(self._groups.items()):
            if sub in group.subscribers:
                group.subscribers.remove(sub)
                self._count -= 1
                self._gone[0] += sub.delivered
                self._gone[1] += sub.dropped_total
                if not group.subscribers:
                    del self._groups[key]
                return

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._ready.wait()
            self._ready.clear()
            batch, self._pending, self._pending_bytes = self._pending, [], 0
            if not batch or not self._groups:
                continue
            starts: list[tuple[int, int]] = []  # (seq, first row) of each write in the batch
            rows = 0
            for seq, payload in batch:
                starts.append((seq, rows))
                rows += payload.count(b"\n") + 1
            by_scope: dict[str, list[_Group]] = {}
            for group in self._groups.values():
                by_scope.setdefault(repr(group.scope), []).append(group)
            jobs = list(by_scope.values())
            payload = b"\n".join(p for _, p in batch)
            # groups whose every client is already full get counts, not serialized records
            wanted = [[not all(sub.full for sub in g.subscribers) for g in groups] for groups in jobs]
            began = time.perf_counter()
            try:
                assert self._runner is not None
                work = [([g.filter for g in groups], groups[0].scope, want) for groups, want in zip(
                    jobs, wanted, strict=True)]
                matched = await loop.run_in_executor(self._executor, run_round, self._runner,
                                                     self._structure, payload, work)
            except Exception:
                log.exception("a tail round failed; its records are reported as dropped")
                for groups in jobs:
                    for group in groups:
                        for sub in group.subscribers:
                            sub.note_dropped(rows)
                continue
            self.rounds += 1
            self.round_seconds += time.perf_counter() - began
            for groups, per_group in zip(jobs, matched, strict=True):
                for group, lines in zip(groups, per_group, strict=True):
                    for sub in group.subscribers:
                        if sub.closed:
                            continue
                        first = next((row for seq, row in starts if seq > sub.after_seq), rows)
                        sub.offer([line for row, line in lines if row >= first] if first else
                                  [line for _, line in lines])
