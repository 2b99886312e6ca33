"""Moves WAL entries into the store in large inserts, exactly once.

The batcher reads durable WAL entries from where it left off, gathers them until the batch is
big enough or its oldest entry is old enough (default 1 s), and inserts them with a
deduplication token made of the WAL sequence range. Before inserting it records the range it is
about to insert (the *intent*) in its progress file; after a crash it first re-inserts exactly that
range with the same token, which the store drops if it already has it. So a batch replayed after
a restart is never stored twice, and nothing acknowledged is lost.

With template mining on, each batch passes through the miner (server/mining.py) first: its
changes are journaled before the intent's insert, so a replayed batch gets the same pattern ids,
and the template rows it made go to the patterns table before the rows that use them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import orjson

from logharbor.durable import write_atomic
from logharbor.server.mining import PatternMiner
from logharbor.server.store.base import Store, StoreError
from logharbor.server.store.patterns import template_rows
from logharbor.server.wal import WalEntry, WalPosition, WriteAheadLog

__all__ = ["Batcher", "BatcherProgress"]

log = logging.getLogger("logharbor.server.batcher")


@dataclass
class BatcherProgress:
    """What is in the store (``done``) and what was being inserted when we last wrote."""

    done_seq: int
    done_pos: WalPosition
    intent: tuple[int, int, WalPosition, WalPosition] | None = None  # first, last, start, end


class Batcher:
    """The thread between the WAL and the store."""

    def __init__(
        self,
        wal: WriteAheadLog,
        store: Store,
        progress_path: str | os.PathLike[str],
        *,
        max_batch_bytes: int = 32 * 1024 * 1024,
        max_age_s: float = 1.0,
        on_batch: Callable[[int, int, float], None] | None = None,
        paused: bool = False,
        miner: PatternMiner | None = None,
    ) -> None:
        self.wal = wal
        self.store = store
        self.progress_path = Path(progress_path)
        self.max_batch_bytes = max_batch_bytes
        self.max_age_s = max_age_s
        self.on_batch = on_batch
        self.paused = paused
        #: the template miner (server/mining.py); None when patterns are off
        self.miner = miner
        #: template rows not yet in the patterns table (kept until an insert of them succeeds)
        self._templates_todo: list[dict[str, object]] = miner.load() if miner is not None else []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._flushed = threading.Condition()
        #: work to run in the batcher thread between two batches (call_between_batches)
        self._calls: list[tuple[Callable[[], object], Future[object]]] = []
        self._calls_lock = threading.Lock()
        self._calls_open = False  # True while the thread will still run what is queued
        #: batches that start before this position go to the store at once (flush_to)
        self._hurry_to: WalPosition | None = None
        self.progress = self._load()
        start = self.wal.start_position()
        if self.progress.intent is None and self.progress.done_pos < start:
            # the WAL before ``start`` is gone (its segments were removed): nothing to replay there
            self.progress.done_pos = start
        self.last_error: str | None = None

    # -- progress file -----------------------------------------------------------------------

    @staticmethod
    def stored_seq(progress_path: str | os.PathLike[str]) -> int:
        """The highest WAL sequence number that may be in the store (0 when none)."""
        try:
            data = orjson.loads(Path(progress_path).read_bytes())
        except FileNotFoundError:
            return 0
        intent = data.get("intent")
        return max(int(data.get("done_seq", 0)), int(intent[1]) if intent else 0)

    def _load(self) -> BatcherProgress:
        try:
            data = orjson.loads(self.progress_path.read_bytes())
        except FileNotFoundError:
            return BatcherProgress(0, self.wal.start_position())
        intent = data.get("intent")
        return BatcherProgress(
            done_seq=data["done_seq"],
            done_pos=WalPosition(*data["done_pos"]),
            intent=(intent[0], intent[1], WalPosition(*intent[2]), WalPosition(*intent[3]))
            if intent else None,
        )

    def _save(self) -> None:
        p = self.progress
        body = {"version": 1, "done_seq": p.done_seq, "done_pos": p.done_pos.as_list()}
        if p.intent:
            first, last, start, end = p.intent
            body["intent"] = [first, last, start.as_list(), end.as_list()]
        write_atomic(self.progress_path, orjson.dumps(body))

    # -- running -----------------------------------------------------------------------------

    def start(self) -> None:
        self._calls_open = True
        self._thread = threading.Thread(target=self._run, name="batcher", daemon=True)
        self._thread.start()

    def stop(self, *, drain: bool = True) -> None:
        """Stop; with ``drain`` first move everything durable into the store."""
        if drain and not self.paused:
            self.wait_caught_up(timeout=60)
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.miner is not None:
            self.miner.compact()  # a clean stop leaves a snapshot and an empty journal
            self.miner.close()

    def caught_up(self) -> bool:
        return self.progress.done_pos >= self.wal.durable and self.progress.intent is None

    def wait_stored(self, position: WalPosition, timeout: float) -> bool:
        """Store what lies before ``position`` now (not at the batch age) and wait until it is in
        the store: Elasticsearch's ``_refresh`` (a search right after finds what was sent)."""
        self.flush_to(position)
        deadline = time.monotonic() + timeout
        with self._flushed:
            while self.progress.done_pos < position:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set() or self.paused:
                    return False
                self._flushed.wait(min(remaining, 0.1))
        return True

    def wait_caught_up(self, timeout: float) -> bool:
        """Wait until everything durable in the WAL is in the store."""
        deadline = time.monotonic() + timeout
        with self._flushed:
            while not self.caught_up():
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    return False
                self._flushed.wait(min(remaining, 0.1))
        return True

    def _run(self) -> None:
        while self._templates_todo and not self._stop.is_set():
            # templates the journal knows of that the store may not (a crash before their insert)
            try:
                self._write_templates(f"miner-load-{time.time_ns()}")
            except StoreError as exc:
                self.last_error = str(exc)
                log.error("writing pattern templates failed, retrying: %s", exc)
                self._stop.wait(1.0)
        if self.progress.intent is not None:
            self._replay_intent()
        while not self._stop.is_set():
            self._run_calls()
            if self.paused:
                self._stop.wait(0.2)
                continue
            try:
                self._step()
            except StoreError as exc:
                self.last_error = str(exc)
                log.error("store insert failed, retrying: %s", exc)
                self._stop.wait(1.0)
            except Exception as exc:  # a bug must not silently stop ingest → keep retrying
                self.last_error = repr(exc)
                log.exception("batcher step failed")
                self._stop.wait(1.0)
        self._run_calls(last=True)

    # -- work between batches ----------------------------------------------------------------

    def flush_to(self, position: WalPosition) -> None:
        """Store what lies before ``position`` without waiting for the batch age (a delete needs
        every record acknowledged before it in the store now)."""
        self._hurry_to = position if self._hurry_to is None else max(self._hurry_to, position)

    def call_between_batches(self, fn: Callable[[], object], timeout: float = 60.0) -> object:
        """Run ``fn`` in the batcher thread between two batches and return its result.

        The miner and the pending template rows belong to the batcher thread; a delete-by-query
        changes them here, where no batch is half-way through them. Without a running thread
        (stopped, or not started yet) ``fn`` runs in the caller's.
        """
        future: Future[object] = Future()
        with self._calls_lock:
            queued = self._calls_open
            if queued:
                self._calls.append((fn, future))
        if not queued:
            return fn()
        return future.result(timeout)

    def _run_calls(self, *, last: bool = False) -> None:
        with self._calls_lock:
            calls, self._calls = self._calls, []
            if last:
                self._calls_open = False
        for fn, future in calls:
            try:
                future.set_result(fn())
            except Exception as exc:
                future.set_exception(exc)

    def scrub_patterns(self, samples: Mapping[str, str | None], timeout: float = 60.0) -> int:
        """Forget the samples of erased records (see :meth:`PatternMiner.scrub`), in the miner and in
        the template rows not yet written; the number of clusters changed."""
        def run() -> int:
            kept = []
            for row in self._templates_todo:
                pid = str(row.get("pattern_id"))
                if pid in samples and samples[pid] is None:
                    continue  # every record of that pattern is gone: so is the pattern
                kept.append({**row, "sample": samples[pid]} if pid in samples else row)
            self._templates_todo = kept
            return self.miner.scrub(samples) if self.miner is not None else 0
        return int(self.call_between_batches(run, timeout))  # type: ignore[call-overload]

    def _replay_intent(self) -> None:
        first, last, start, end = self.progress.intent  # type: ignore[misc]
        if start < self.wal.start_position():
            log.error("the WAL entries %s-%s of an unfinished insert were removed by hand; "
                      "they cannot be replayed", first, last)
            self.progress = BatcherProgress(last, self.wal.start_position(), None)
            self._save()
            return
        while not self._stop.is_set():
            try:
                entries = self._read_range(start, end)
                self._insert(entries, first, last, end)
                return
            except StoreError as exc:
                self.last_error = str(exc)
                log.error("replaying batch %s-%s failed, retrying: %s", first, last, exc)
                self._stop.wait(1.0)

    def _read_range(self, start: WalPosition, end: WalPosition) -> list[WalEntry]:
        """The entries between ``start`` and ``end``: the same ones the first attempt read (damage
        found since is quarantined and passed, never a reason to stop short or to loop)."""
        entries: list[WalEntry] = []
        pos = start
        while pos < end:
            chunk = self.wal.read(pos, self.max_batch_bytes)
            for entry in chunk:
                if entry.start >= end:
                    return entries
                entries.append(entry)
            if chunk.end <= pos:
                break
            pos = chunk.end
        return entries

    def _step(self) -> None:
        pos = self.progress.done_pos
        if not self.wal.wait_for_data(pos, timeout=0.2):
            return
        first_seen = time.monotonic()
        entries = self.wal.read(pos, self.max_batch_bytes)
        end = entries.end  # past the entries and any damaged bytes the WAL skipped (quarantined)
        size = sum(len(e.payload) for e in entries)
        # let the batch grow until it is big enough or its oldest entry is old enough
        while size < self.max_batch_bytes and not self._stop.is_set():
            remaining = self.max_age_s - (time.monotonic() - first_seen)
            if remaining <= 0 or (self._hurry_to is not None and pos < self._hurry_to):
                break
            if not self.wal.wait_for_data(end, timeout=min(remaining, 0.05)):
                continue
            more = self.wal.read(end, self.max_batch_bytes - size)
            entries.extend(more)
            end = more.end
            size += sum(len(e.payload) for e in more)
        if not entries:
            if end > pos:  # only damage (or a segment's end) was passed: nothing to insert
                self.progress.done_pos = end
                self._save()
                self.wal.release(end)
                with self._flushed:
                    self._flushed.notify_all()
            else:  # durable data the WAL could not hand out: never a hot loop
                self._stop.wait(0.05)
            return
        first, last = entries[0].seq, entries[-1].seq
        self.progress.intent = (first, last, entries[0].start, end)
        self._save()
        self._insert(entries, first, last, end)

    def _mine(self, entries: list[WalEntry], token: str) -> bytes:
        """Give the rows their cluster ids; the miner's changes are durable before the insert,
        and the templates it made are in the patterns table before the rows that use them."""
        assert self.miner is not None
        parts: list[bytes] = []
        for entry in entries:
            payload, made = self.miner.process(entry.payload)
            parts.append(payload)
            self._templates_todo.extend(made)
        self.miner.commit()
        self._write_templates(token)
        return b"\n".join(parts)

    def _write_templates(self, token: str) -> None:
        if self._templates_todo:
            self.store.insert_patterns(template_rows(self._templates_todo),  # type: ignore[attr-defined]
                                       dedup_token=token)
            self._templates_todo = []

    def _insert(self, entries: list[WalEntry], first: int, last: int, end: WalPosition) -> None:
        started = time.monotonic()
        rows = 0
        if entries:
            if self.miner is not None:
                payload = self._mine(entries, f"wal-{first}-{last}")
            else:
                payload = b"\n".join(e.payload for e in entries)
            rows = payload.count(b"\n") + 1
            self.store.insert(payload, dedup_token=f"wal-{first}-{last}")
        self.progress = BatcherProgress(done_seq=last, done_pos=end, intent=None)
        self._save()
        if self.miner is not None:
            self.miner.maybe_compact()
        self.wal.release(end)
        self.last_error = None
        if self.on_batch is not None:
            self.on_batch(len(entries), rows, time.monotonic() - started)
        with self._flushed:
            self._flushed.notify_all()
