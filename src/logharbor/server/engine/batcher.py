"""Moves WAL entries into the store in large inserts, exactly once.

The batcher reads durable WAL entries from where it left off, gathers them until the batch is
big enough or its oldest entry is old enough (the server's default 0.5 s), and inserts them with a
deduplication token made of the WAL sequence range. Before inserting it records the range it is
about to insert (the *intent*) in its progress file; after a crash it first re-inserts exactly that
range with the same token, which the store drops if it already has it. So a batch replayed after
a restart is never stored twice, and nothing acknowledged is lost.

Nothing is taken on the engine's word: after each insert the store counts the batch's rows back
(store/batches.py), and only a batch found whole is recorded done and its WAL range released.
A failed or unverified insert, a progress file that cannot be written (a full disk) or any other
error keeps the batch where it is: the same range is tried again, with the same token, after a
growing pause (0.5 s doubling up to ``retry_max_s``), and ``/readyz`` shows why. So ingest
resumes by itself once the disk has room again, and nothing acknowledged is lost or doubled.
A batch the store refuses for its *data* (a row the engine cannot parse), attempt after attempt,
is stored in halves until the refused rows stand alone; those are set aside in the WAL's
quarantine (server/engine/refused.py) and the rest is stored, so one poison row never blocks
ingest.

With template mining on, each batch passes through the miner (server/engine/mining.py) first: its
changes are journaled before the intent's insert, so a replayed batch gets the same pattern ids,
and the template rows it made go to the patterns table (and are found there) before the rows
that use them.

At shutdown :meth:`Batcher.stop` flushes at once (a partial batch does not wait out its age),
within a deadline; what the deadline leaves in the WAL is logged and replayed at the next start.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from pathlib import Path

from logharbor.server.diskspace import is_no_space
from logharbor.server.engine.batcher_progress import (
    BatcherProgress,
    DamagedProgress,
    load_progress,
    save_progress,
    stored_seq,
)
from logharbor.server.engine.mining import PatternMiner
from logharbor.server.engine.refused import RefusedRows, is_refusal, isolate
from logharbor.server.engine.store.base import Store, StoreError
from logharbor.server.engine.store.batches import row_count
from logharbor.server.engine.store.patterns import missing_templates, template_rows
from logharbor.server.engine.wal import WalEntry, WalPosition, WriteAheadLog
from logharbor.threadnames import name_os_thread

__all__ = ["Batcher", "BatcherProgress", "DamagedProgress", "UnverifiedInsert"]

log = logging.getLogger("logharbor.server.engine.batcher")


class UnverifiedInsert(StoreError):
    """After an insert the store holds fewer of the batch's rows than were sent: the batch stays
    in the WAL and is inserted again (the token makes the retry store only what is missing)."""


class Batcher:
    """The thread between the WAL and the store."""

    def __init__(
        self,
        wal: WriteAheadLog,
        store: Store,
        progress_path: str | os.PathLike[str],
        *,
        max_batch_bytes: int = 32 * 1024 * 1024,
        max_age_s: float = 0.5,
        on_batch: Callable[[int, int, float], None] | None = None,
        paused: bool = False,
        miner: PatternMiner | None = None,
        retry_max_s: float = 5.0,
        free_space: Callable[[], int | None] | None = None,
        merge_brake_bytes: int = 256 * 1024 * 1024,
        refuse_after: int = 3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.wal = wal
        self.store = store
        self.progress_path = Path(progress_path)
        self.max_batch_bytes = max_batch_bytes
        self.max_age_s = max_age_s
        #: what a batch's age is measured with (seconds; tests turn it by hand)
        self.clock = clock
        self.on_batch = on_batch
        self.paused = paused
        self.retry_max_s = retry_max_s
        #: free bytes where the store writes (None: unknown), to tell a full disk in /readyz
        self.free_space = free_space
        #: the template miner (server/engine/mining.py); None when patterns are off
        self.miner = miner
        #: template rows not yet in the patterns table (kept until an insert of them succeeds)
        self._templates_todo: list[dict[str, object]] = miner.load() if miner is not None else []
        self._loaded_templates_written = not self._templates_todo
        self._stop = threading.Event()
        self._flush = threading.Event()  # set at shutdown: a partial batch goes now
        self._thread: threading.Thread | None = None
        self._flushed = threading.Condition()
        self._dirty = False  # the progress in memory is newer than the file (its write failed)
        #: work to run in the batcher thread between two batches (call_between_batches)
        self._calls: list[tuple[Callable[[], object], Future[object]]] = []
        self._calls_lock = threading.Lock()
        self._calls_open = False  # True while the thread will still run what is queued
        #: batches that start before this position go to the store at once (flush_to)
        self._hurry_to: WalPosition | None = None
        #: when the last batch stopped taking entries (``clock``): the next batch's entries became
        #: durable after it (entries found at start are taken at once)
        self._cut_at = float("-inf")
        self.progress = self._load()
        start = self.wal.start_position()
        if self.progress.intent is None and self.progress.done_pos < start:
            # the WAL before ``start`` is gone (its segments were removed): nothing to replay there
            self.progress.done_pos = start
        #: why the last attempt failed (None once a batch went through), for /readyz
        self.last_error: str | None = None
        #: the last failure was the disk being full (ENOSPC, or rows missing with no room left)
        self.no_space = False
        #: attempts failed in a row
        self.failures = 0
        #: attempts refused for their data in a row (an outage between them starts the count again)
        self.refusals = 0
        #: below this much free disk the store's merges are stopped (see _brake_merges)
        self.merge_brake_bytes = merge_brake_bytes
        self.merges_braked = False
        #: after this many attempts refused for their data, a batch's refused rows are set aside
        self.refuse_after = refuse_after
        self.refused = RefusedRows(wal.quarantine_dir / "refused", wal.sealer)

    # -- progress file -----------------------------------------------------------------------

    @staticmethod
    def stored_seq(progress_path: str | os.PathLike[str]) -> int:
        """The highest WAL sequence number that may be in the store (0 when none)."""
        return stored_seq(Path(progress_path))

    def _load(self) -> BatcherProgress:
        return load_progress(self.progress_path) or BatcherProgress(0, self.wal.start_position())

    def _save(self) -> None:
        self._dirty = True
        save_progress(self.progress_path, self.progress)
        self._dirty = False

    # -- running -----------------------------------------------------------------------------

    def start(self) -> None:
        self._calls_open = True
        self._thread = threading.Thread(target=self._run, name="batcher", daemon=True)
        self._thread.start()

    def begin_flush(self) -> None:
        """Shutdown has begun: send a partial batch now instead of waiting out its age."""
        self._flush.set()

    def stop(self, *, drain: bool = True, timeout: float = 60.0) -> bool:
        """Stop; with ``drain`` first move everything durable into the store, at once (a partial
        batch does not wait out its age) and for at most ``timeout`` seconds. True when the
        store has everything; otherwise what is left is logged (the next start replays it)."""
        deadline = time.monotonic() + timeout
        self._flush.set()
        done = self.caught_up()
        if drain and not self.paused:
            done = self.wait_caught_up(timeout=timeout)
        if not done:
            self._log_left(timeout)
        self._stop.set()
        stopped = True
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, deadline - time.monotonic()))
            stopped = not self._thread.is_alive()
            if not stopped:  # an insert is still running: leave it (a daemon thread), keep the miner
                log.error("shutdown: the batcher is still inside a store insert; leaving it")
        if stopped and self.miner is not None:
            try:
                self.miner.compact()  # a clean stop leaves a snapshot and an empty journal
            except OSError as exc:  # a full disk: the journal is still there and whole
                log.warning("shutdown: could not write the pattern snapshot (%s); the journal keeps "
                            "the changes", exc)
            self.miner.close()
        return done and stopped

    def _log_left(self, timeout: float) -> None:
        intent = self.progress.intent
        pending = f"; batch {intent[0]}-{intent[1]} was being inserted" if intent else ""
        log.error("shutdown deadline (%.0f s) passed before the store had everything: WAL entries "
                  "after sequence %d (%d bytes) stay in the write-ahead log and are inserted at "
                  "the next start%s%s", timeout, self.progress.done_seq, self.wal.backlog_bytes(),
                  pending, f" (last error: {self.last_error})" if self.last_error else "")

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
        name_os_thread("lh-batcher")  # its CPU apart from the engine's and the loop's (bench/ingest.py)
        while not self._stop.is_set():
            self._run_calls()
            try:
                worked = self._attempt()
            except Exception as exc:  # nothing may stop the batcher: record why, wait, try again
                self._failed(exc)
                self._stop.wait(min(self.retry_max_s, 0.5 * 2 ** min(self.failures - 1, 10)))
                continue
            if worked:
                self._succeeded()
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
            if self.miner is None:
                return 0
            changed = self.miner.scrub(samples)
            self._templates_todo.extend(self.miner.loose_rows)  # groups the erasure changed
            self.miner.loose_rows = []
            return changed
        return int(self.call_between_batches(run, timeout))  # type: ignore[call-overload]

    def _brake_merges(self) -> None:
        """Stop the store's merges while its disk has less than ``merge_brake_bytes`` free, start
        them again above twice that: a merge written into the last bytes of a disk was committed
        with empty files, and the rows it held (already released from the WAL) were lost."""
        free = self.free_space() if self.free_space is not None else None
        if free is None:
            return
        if not self.merges_braked and free < self.merge_brake_bytes:
            self.store.set_merges(False)
            self.merges_braked = True
            log.warning("the store's disk has %d bytes free: merges are stopped until it has %d",
                        free, 2 * self.merge_brake_bytes)
        elif self.merges_braked and free >= 2 * self.merge_brake_bytes:
            self.store.set_merges(True)
            self.merges_braked = False
            log.warning("the store's disk has %d bytes free again: merges run again", free)

    def _attempt(self) -> bool:
        """One step: a pending progress write, templates from the journal, the unfinished batch
        (again), or a new batch. True when something reached disk or the store."""
        self._brake_merges()
        if self._dirty:
            self._save()
            self.wal.release(self.progress.done_pos)
            return True
        if self._templates_todo and not self._loaded_templates_written:
            # templates the journal knows of that the store may not (a crash before their insert)
            self._write_templates(f"miner-load-{time.time_ns()}")
            self._loaded_templates_written = True
            return True
        if self.progress.intent is not None:
            return self._replay_intent()
        if self.paused:
            self._stop.wait(0.2)
            return False
        return self._step()

    def _succeeded(self) -> None:
        if self.failures:
            log.warning("the store takes batches again after %d failed attempts", self.failures)
        self.failures = 0
        self.refusals = 0
        self.last_error = None
        self.no_space = False

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        self.refusals = self.refusals + 1 if is_refusal(exc) else 0
        self.last_error = str(exc) if isinstance(exc, StoreError | OSError) else repr(exc)
        free = self.free_space() if self.free_space is not None else None
        self.no_space = is_no_space(exc) or (isinstance(exc, UnverifiedInsert) and free is not None
                                             and free < 16 * 1024 * 1024)
        if self.no_space and free is not None:
            self.last_error += f" ({free} bytes free)"
        if isinstance(exc, StoreError | OSError):
            if self.failures == 1 or self.failures % 20 == 0:
                log.error("store write failed (attempt %d), the batch stays in the WAL and is tried "
                          "again: %s", self.failures, self.last_error)
        else:  # a bug must not silently stop ingest: keep its trace, keep retrying
            log.exception("batcher step failed (attempt %d)", self.failures)

    def assign(self, work: Callable[[PatternMiner], list[dict[str, object]]], token: str,
               timeout: float = 120.0) -> int:
        """Run ``work`` on the miner in this thread, make its changes durable and write the
        assignment rows it returns to the patterns table (the pattern upkeep: ids of an earlier
        release adopted, backfilled messages learned); the number of rows."""
        def run() -> int:
            assert self.miner is not None
            rows = work(self.miner)
            self.miner.commit()
            self._templates_todo.extend(rows)
            self._write_templates(token)
            return len(rows)
        return int(self.call_between_batches(run, timeout))  # type: ignore[call-overload]

    def _replay_intent(self) -> bool:
        first, last, start, end = self.progress.intent  # type: ignore[misc]
        if start < self.wal.start_position():
            log.error("the WAL entries %s-%s of an unfinished insert were removed by hand; "
                      "they cannot be replayed", first, last)
            self.progress = BatcherProgress(last, self.wal.start_position(), None)
            self._save()
            return True
        entries = self._read_range(start, end)
        self._save()  # the intent is on disk before the insert (its first write may have failed)
        self._insert(entries, first, last, end, retry=True)
        return True

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

    def _step(self) -> bool:
        pos = self.progress.done_pos
        waited = not self.wal.wait_for_data(pos, timeout=0)
        if waited and not self.wal.wait_for_data(pos, timeout=0.2):
            self._cut_at = self.clock()  # nothing was waiting: what comes next is younger than now
            return False
        # the batch's age: since its oldest entry became durable. Waited for, that is now; already
        # there, it came while the last batch was being stored, so at most since that batch was
        # cut (counting from now made an entry wait out a whole insert and then a whole age:
        # ingest → searchable took an age plus two inserts)
        first_seen = self.clock() if waited else self._cut_at
        entries = self.wal.read(pos, self.max_batch_bytes)
        end = entries.end  # past the entries and any damaged bytes the WAL skipped (quarantined)
        size = sum(len(e.payload) for e in entries)
        # let the batch grow until it is big enough or its oldest entry is old enough
        while size < self.max_batch_bytes and not self._stop.is_set() and not self._flush.is_set():
            remaining = self.max_age_s - (self.clock() - first_seen)
            if remaining <= 0 or (self._hurry_to is not None and pos < self._hurry_to):
                break
            if not self.wal.wait_for_data(end, timeout=min(remaining, 0.05)):
                continue
            more = self.wal.read(end, self.max_batch_bytes - size)
            entries.extend(more)
            end = more.end
            size += sum(len(e.payload) for e in more)
        self._cut_at = self.clock()  # what becomes durable from now on is the next batch's
        if not entries:
            if end > pos:  # only damage (or a segment's end) was passed: nothing to insert
                self.progress.done_pos = end
                self._save()
                self.wal.release(end)
                with self._flushed:
                    self._flushed.notify_all()
                return True
            self._stop.wait(0.05)  # durable data the WAL could not hand out: never a hot loop
            return False
        first, last = entries[0].seq, entries[-1].seq
        # the intent is kept in memory even if writing it fails: the retry takes this very range
        self.progress.intent = (first, last, entries[0].start, end)
        self.progress.isolating = False
        self._save()
        self._insert(entries, first, last, end)
        return True

    def _mine(self, entries: list[WalEntry], token: str) -> list[bytes]:
        """Learn the masked templates of the rows (which keep their ids); the miner's changes are
        durable before the insert, and the group assignments it made are in the patterns table
        before the rows that use them."""
        assert self.miner is not None
        parts: list[bytes] = []
        for entry in entries:
            payload, made = self.miner.process(entry.payload)
            parts.append(payload)
            self._templates_todo.extend(made)
        self.miner.commit()
        self._write_templates(token)
        return parts

    def _set_aside(self, entries: list[WalEntry], parts: list[bytes], first: int, last: int, token: str,
                   retry: bool, error: str) -> tuple[int, int]:
        """The store refuses this batch for its data (attempt after attempt): store it in halves
        until the refused rows stand alone, keep those in the quarantine (engine/refused.py);
        (rows stored, rows expected in the store). That the batch is being stored in halves is
        durable (``progress.isolating``) before the first half goes: a half stored under its own
        token must never be stored again by the whole batch under the batch's token (after an
        outage or a restart in the middle, the store may take the whole batch again)."""
        lines: list[bytes] = []
        seqs: list[int] = []
        for entry, part in zip(entries, parts, strict=True):
            for line in part.split(b"\n"):
                if line.strip():
                    lines.append(line)
                    seqs.append(entry.seq)
        if len(lines) > 1 and not self.progress.isolating:
            self.progress.isolating = True
            self._save()  # raises when it cannot be written: then no half goes to the store
        log.warning("batch %s is refused for its data (%d attempts): storing it in halves to find the "
                    "refused rows: %s", token, self.refusals + 1, error[:300])
        stored, refused = isolate(lambda rows, sub: self.store.insert(rows, dedup_token=sub, retry=retry),
                                  lines, token, error, attempts=self.refuse_after)
        if refused:
            self.refused.keep(token, first, last, [(seqs[i], lines[i], error) for i, error in refused])
        return stored, len(lines) - len(refused)

    def _write_templates(self, token: str) -> None:
        if not self._templates_todo:
            return
        self.store.insert_patterns(template_rows(self._templates_todo), dedup_token=token)
        absent = missing_templates(self.store, self._templates_todo)
        if absent:
            raise UnverifiedInsert(f"{len(absent)} of {len(self._templates_todo)} pattern templates "
                                   f"are not in the patterns table after insert {token}")
        self._templates_todo = []

    def _insert(self, entries: list[WalEntry], first: int, last: int, end: WalPosition, *,
                retry: bool = False) -> None:
        started = time.monotonic()
        rows = 0
        token = f"wal-{first}-{last}"
        if entries:
            parts = self._mine(entries, token) if self.miner is not None else [e.payload for e in entries]
            payload = b"\n".join(parts)
            rows = row_count(payload)
            if self.progress.isolating:  # an isolation cut short: go on in halves, never whole
                stored, rows = self._set_aside(entries, parts, first, last, token, retry,
                                               "(an isolation cut short, resumed)")
            else:
                try:
                    stored = self.store.insert(payload, dedup_token=token, retry=retry)
                except StoreError as exc:
                    if not is_refusal(exc) or self.refusals + 1 < self.refuse_after:
                        raise
                    stored, rows = self._set_aside(entries, parts, first, last, token, retry, str(exc))
            if stored < rows:
                raise UnverifiedInsert(f"the store holds {stored} of the {rows} rows of batch {token} "
                                       "after its insert")
            if stored > rows:
                log.warning("batch %s: %d rows sent, %d found under its token", token, rows, stored)
        self._succeeded()  # the batch is stored: before anyone waiting for the flush hears of it
        self.progress = BatcherProgress(done_seq=last, done_pos=end, intent=None)
        self._save()
        self.wal.release(end)
        if self.on_batch is not None:
            self.on_batch(len(entries), rows, time.monotonic() - started)
        with self._flushed:
            self._flushed.notify_all()
        if self.miner is not None:
            try:
                self.miner.maybe_compact()
            except OSError as exc:  # the journal still holds everything; compaction waits for room
                log.warning("could not fold the pattern journal into a snapshot: %s", exc)
