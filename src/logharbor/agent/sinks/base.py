"""What every sink shares: a buffer, a delivery thread that batches, retries and acknowledges.

A concrete sink only says how to send one batch (``send``) and whether a failure is
:class:`~logharbor.agent.types.Retriable` or :class:`~logharbor.agent.types.Permanent`. This base:

- batches buffered payloads by size, record count and age;
- retries a retriable failure for as long as it takes (at-least-once), with exponential backoff
  and full jitter, waiting at least the receiver's ``Retry-After``;
- splits a batch the receiver found too large (413) and sends the halves, down to single
  records (only a record too large on its own is refused);
- gives every batch an ``Idempotency-Key`` (:mod:`logharbor.agent.identity`): the same on every
  attempt of the batch, a new one for a new batch; a batch taken from a disk buffer is noted there
  before it is sent, so after a crash the very same batch is formed again under the same key and
  a server that already stored it stores it once;
- acknowledges a batch's chunks only after ``send`` returned, and a permanent failure as
  *rejected* (counted, logged, optionally written to a dead-letter file) so one poison batch
  never blocks everything behind it;
- on close, drains within a deadline; what is still unsent is simply not acknowledged, so the
  sources' checkpoints stay behind it (memory buffer) or the disk buffer replays it on restart;
- on a hot reload, ``detach`` stops the delivery threads without closing the buffer, so the
  sink's replacement adopts the very same buffer (what was queued and what was in flight but not
  acknowledged is delivered by the replacement, once).
"""

from __future__ import annotations

import itertools
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

import orjson
from pydantic import Field

from logharbor.agent import telemetry
from logharbor.agent.buffer import open_buffer
from logharbor.agent.identity import batch_key, instance_id, short_id
from logharbor.agent.options import BatchConfig, BufferConfig, Strict
from logharbor.agent.types import AckStatus, Buffer, BufferClosed, Encoded, Permanent, Retriable
from logharbor.types import JsonObject

__all__ = ["BufferedSink", "PartialRetry", "SinkConfig", "TooLarge", "Unaccounted"]


class TooLarge(Permanent):
    """The receiver refused the body as too large (413); a smaller batch may pass."""


class Unaccounted(Retriable):
    """The receiver answered for fewer records than were sent: send the batch again under a *new*
    idempotency key (under the old one the receiver would answer what it answered before)."""


class PartialRetry(Retriable):
    """Part of a batch was taken; ``payload`` (``count`` records) is what must be sent again.

    Raised by sinks whose receiver answers per record (Elasticsearch ``_bulk``): resending only
    the refused records keeps the accepted ones from being stored twice.
    """

    def __init__(self, message: str, payload: bytes, count: int, *, rejected: bytes = b"",
                 rejected_count: int = 0, rejected_error: str = "",
                 rejected_lines: list[JsonObject] | None = None, context: Any = None) -> None:
        super().__init__(message)
        self.payload, self.count = payload, count
        #: handed back to ``send`` with ``payload`` (the ES sink keeps each record's ``_id`` in it)
        self.context = context
        #: records refused for good in the same answer (dead-lettered, not resent)
        self.rejected, self.rejected_count, self.rejected_error = rejected, rejected_count, rejected_error
        #: the same refusals one by one (``line`` 1-based in the payload sent, ``error``), if known
        self.rejected_lines = rejected_lines


class SinkConfig(Strict):
    """Options every sink has: batching, buffering, retry pacing, and a dead-letter file."""

    batch: BatchConfig = BatchConfig()
    buffer: BufferConfig = BufferConfig()
    retry_initial_secs: float = Field(default=0.2, gt=0)
    retry_max_secs: float = Field(default=30.0, gt=0)
    concurrency: int = Field(default=2, ge=1, le=32)
    dead_letter_path: Path | None = None


class BufferedSink:
    """Base class: subclasses implement ``send(payload, count) -> rejected_lines``."""

    def __init__(self, name: str, cfg: SinkConfig, data_dir: Path, *, buffer: Buffer | None = None) -> None:
        self.name = name
        self.cfg = cfg
        if buffer is not None:  # adopted from the sink this one replaces (hot reload)
            buffer.reconfigure(cfg.buffer.max_bytes, cfg.buffer.when_full)
            self.buffer: Buffer = buffer
        else:
            self.buffer = open_buffer(
                cfg.buffer.type, data_dir / "buffer" / name, cfg.buffer.max_bytes, cfg.buffer.when_full,
                cfg.buffer.encryption_key_file)
        self._stop = threading.Event()
        self._detaching = False
        #: set when the sink was removed by a reload: what reaches it after that is not owed to anyone
        self.retired = False
        self._deadline: float | None = None
        self._threads = [threading.Thread(target=self._run, name=f"sink-{name}-{i}", daemon=True)
                         for i in range(self._workers(cfg))]
        self._metrics = telemetry.METRICS
        self.delivered = 0
        self._count_lock = threading.Lock()
        # batches are formed one at a time, so a batch is one contiguous run of the buffer
        self._collect_lock = threading.Lock()
        self._key_base = (instance_id(data_dir), name)
        self._run_id = short_id()
        self._seq = itertools.count()

    # -- the pipeline side ----------------------------------------------------------------------

    def _workers(self, cfg: SinkConfig) -> int:
        """How many batches may be in flight at once (sinks that cannot overlap say 1)."""
        return cfg.concurrency

    def start(self) -> None:
        for th in self._threads:
            th.start()

    def submit(self, item: Encoded) -> None:
        if item.count == 0:  # every record was filtered out: nothing to send, nothing to wait for
            if item.ack is not None:
                item.ack.done()
            return
        try:
            taken = self.buffer.put(item)
        except BufferClosed:
            if self.retired and item.ack is not None:
                item.ack.done(AckStatus.DROPPED)  # the sink was removed: nothing is owed to it
            return  # shutting down: not taken, not acknowledged, read again after the restart
        if taken:
            if self.cfg.buffer.type == "disk" and item.ack is not None:
                item.ack.done()  # durable in the disk buffer: that is this sink's acknowledgement
        else:
            telemetry.records_dropped(self.name, item.count)
            if item.ack is not None:
                item.ack.done(AckStatus.DROPPED)
        self._gauge()

    def close(self, timeout: float) -> None:
        """Deliver what the buffer holds for up to ``timeout`` seconds, then stop."""
        self._deadline = time.monotonic() + timeout
        self._stop.set()
        self._join()
        self.buffer.close()
        self._closed()

    def detach(self, timeout: float) -> Buffer:
        """Stop delivering (the batches in flight finish, up to ``timeout`` seconds) and hand the
        buffer over, not closed, with every item not yet delivered made ready to be sent again."""
        self._detaching = True
        self._deadline = time.monotonic() + timeout
        self._stop.set()
        self._join()
        self.buffer.rewind()
        self._closed()
        return self.buffer

    def _join(self) -> None:
        assert self._deadline is not None
        for th in self._threads:
            if th.ident is not None:
                th.join(max(0.0, self._deadline - time.monotonic()) + 0.5)
        if any(th.is_alive() for th in self._threads):
            # a request the receiver never answers: cut it (at-least-once: it is sent again)
            self._abort()
            for th in self._threads:
                th.join(5.0)

    def _closed(self) -> None:
        """Release connections (subclasses)."""

    def _abort(self) -> None:
        """Cut requests in flight from another thread (subclasses with connections)."""

    # -- the delivery thread ------------------------------------------------------------------

    def send(self, payload: bytes, count: int, key: str, context: Any = None) -> list[JsonObject]:
        """Deliver one batch under its idempotency ``key``; return the receiver's per-line
        rejections; raise on failure. ``context`` is what a :class:`PartialRetry` carried."""
        raise NotImplementedError

    def batch_key(self, items: list[Encoded]) -> str:
        """The idempotency key of a batch of these items: its disk-buffer span when it has one
        (the same after a restart), else this run's next sequence number."""
        span = self.buffer.span(items)
        if span is not None:
            return batch_key(*self._key_base, span)
        return batch_key(*self._key_base, self._run_id, str(next(self._seq)))

    def _gauge(self) -> None:
        nbytes, events = self.buffer.size()
        self._metrics.buffer_bytes.labels(self.name).set(nbytes)
        self._metrics.buffer_events.labels(self.name).set(events)

    def _expired(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _collect(self) -> list[Encoded]:
        with self._collect_lock:
            items = self._collect_batch()
        if items:
            self.buffer.note_batch(items)
        return items

    def _collect_batch(self) -> list[Encoded]:
        b = self.cfg.batch
        if self._detaching:
            return []
        first = self.buffer.get(0.0 if self._stop.is_set() else 0.2)
        if first is None:
            return []
        items, size, count = [first], len(first.payload), first.count
        replay = self.buffer.replay_end(first)
        if replay is not None:  # formed before a crash: the same items again, under the same key
            while len(items) < replay:
                item = self.buffer.get(0.2)
                if item is None:
                    break
                items.append(item)
            return items
        age_limit = time.monotonic() + b.timeout_secs
        while size < b.max_bytes and count < b.max_events:
            wait = 0.0 if self._stop.is_set() else age_limit - time.monotonic()
            if wait < 0:
                break
            item = self.buffer.get(min(wait, 0.2))
            if item is None:
                if self._stop.is_set() or time.monotonic() >= age_limit:
                    break
                continue
            items.append(item)
            size += len(item.payload)
            count += item.count
        return items

    def _run(self) -> None:
        while True:
            try:
                items = self._collect()
            except Exception:  # a buffer that cannot be read must not end delivery: say so, retry
                telemetry.log.exception("sink buffer could not be read; retrying in 5 s",
                                        extra={"fields": {"sink": self.name}})
                if self._stop.wait(5.0):
                    return
                continue
            if not items:
                if self._stop.is_set():
                    return
                continue
            status = self._deliver(items)
            if status is None:  # shutting down with the batch unsent: leave it unacknowledged
                return
            self.buffer.commit(items)
            for it in items:
                if it.ack is not None:
                    try:
                        it.ack.done(status)
                    except Exception:  # a source's bookkeeping (its checkpoint on a full disk)
                        # must not end this delivery thread: say so, deliver on
                        telemetry.log.exception("a source could not take its acknowledgement",
                                                extra={"fields": {"sink": self.name}})
            self._gauge()

    def _deliver(self, items: list[Encoded]) -> AckStatus | None:
        """Send ``items`` as one batch (or halves on 413) until it succeeds or is refused."""
        payload = b"".join(it.payload for it in items)
        count = sum(it.count for it in items)
        # the key is the same on every attempt of this batch
        return self._deliver_batch(items, payload, count, self.batch_key(items))

    def _deliver_batch(self, items: list[Encoded], payload: bytes, count: int, key: str) -> AckStatus | None:
        """Send one batch (``items``, or records of one item when ``items`` is empty) until it
        succeeds or is refused."""
        context: Any = None
        attempt = 0
        partial = False  # part of the batch was taken already: never resend the whole of it
        floor = AckStatus.DELIVERED
        while True:
            if self._expired() or (self._detaching and attempt and not partial):
                return None
            try:
                rejected = self.send(payload, count, key, context)
            except TooLarge as exc:
                if not partial and (len(items) > 1 or payload.count(b"\n") > 1):
                    return self._deliver_halves(items, payload, key)
                self._reject(payload, count, str(exc))  # one record too large on its own
                return AckStatus.REJECTED
            except Permanent as exc:
                self._reject(payload, count, str(exc))
                return AckStatus.REJECTED
            except Retriable as exc:
                if isinstance(exc, PartialRetry):
                    self._count_sent(count - exc.count - exc.rejected_count, 0)
                    if exc.rejected_lines:
                        self._reject_lines(payload, exc.rejected_lines)
                        floor = AckStatus.REJECTED
                    elif exc.rejected_count:
                        self._reject(exc.rejected, exc.rejected_count, exc.rejected_error)
                        floor = AckStatus.REJECTED
                    payload, count, partial, context = exc.payload, exc.count, True, exc.context
                elif isinstance(exc, Unaccounted):
                    key = batch_key(*self._key_base, self._run_id, str(next(self._seq)))
                attempt += 1
                backoff = min(self.cfg.retry_max_secs, self.cfg.retry_initial_secs * 2 ** min(attempt, 30))
                wait = random.uniform(backoff / 2, backoff)  # noqa: S311 - jitter, not secrecy
                if exc.retry_after is not None:
                    wait = max(wait, min(exc.retry_after, 300.0))
                telemetry.batch_retry(self.name, str(exc), wait, attempt)
                if self._deadline is not None:
                    wait = min(wait, max(0.0, self._deadline - time.monotonic()))
                if self._stop.is_set():
                    time.sleep(min(wait, 0.5))
                else:
                    self._stop.wait(wait)
                continue
            self._count_sent(count - len(rejected), 1)
            if rejected:
                self._reject_lines(payload, rejected)
            return max(floor, AckStatus.REJECTED if rejected else AckStatus.DELIVERED)

    def _deliver_halves(self, items: list[Encoded], payload: bytes, key: str) -> AckStatus | None:
        """A batch the receiver found too large (413), sent as two halves: of its items while it
        has several, else of its records. One item may hold more records than the receiver takes
        at once (a file block of short lines, an ALB object's 5,000 lines, against a key's
        ``ingest_rate`` or a proxy's body limit): refusing it whole threw good records away."""
        if len(items) > 1:
            half = len(items) // 2
            first = self._deliver(items[:half])
            if first is None:
                return None
            second = self._deliver(items[half:])
            return None if second is None else max(first, second)
        lines = payload.split(b"\n")[:-1]  # every record ends with a newline
        half = len(lines) // 2
        status = AckStatus.DELIVERED
        # keys derived from the batch's own: the same halves under the same keys after a replay
        for part, name in ((lines[:half], "a"), (lines[half:], "b")):
            done = self._deliver_batch([], b"\n".join(part) + b"\n", len(part), batch_key(key, name))
            if done is None:
                return None
            status = max(status, done)
        return status

    def _count_sent(self, records: int, batches: int) -> None:
        with self._count_lock:
            self.delivered += records
        self._metrics.records_sent.labels(self.name).inc(records)
        self._metrics.batches_sent.labels(self.name).inc(batches)

    def _reject(self, payload: bytes, count: int, error: str) -> None:
        telemetry.batch_rejected(self.name, count, error)
        self._dead_letter(payload)

    def _reject_lines(self, payload: bytes, rejected: list[JsonObject]) -> None:
        """Dead-letter the refused records, each with ``_dead_letter: {sink, status, reason}``."""
        lines = payload.split(b"\n")
        bad = []
        for r in rejected:
            k = r.get("line")  # 1-based, as the server counts
            if isinstance(k, int) and 1 <= k <= len(lines):
                line = lines[k - 1]
                why = orjson.dumps({"_dead_letter": {"sink": self.name, "status": r.get("status"),
                                                     "reason": str(r.get("error", ""))}})
                if line.startswith(b"{") and len(line) > 2:
                    line = why[:-1] + b"," + line[1:]
                bad.append(line + b"\n")
        first = rejected[0].get("error", "") if rejected else ""
        telemetry.batch_rejected(self.name, len(rejected), f"per-line rejections, first: {first}")
        self._dead_letter(b"".join(bad))

    def _dead_letter(self, payload: bytes) -> None:
        path = self.cfg.dead_letter_path
        if path is None or not payload:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, payload)
        finally:
            os.close(fd)
