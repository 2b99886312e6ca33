"""The non-blocking handler: the caller only enqueues; a background thread formats and writes.

Why: a log call sits on every request's hot path, and writing (a pipe that is full, a slow
disk, the network) must never hold it up. The caller thread does the least it can — a sampling
check, one ``ContextVar.get()``, one ``deque.append`` — and everything else (building the
record, masking, JSON, writing, shipping) happens on one daemon thread in batches.

The queue is bounded. Under pressure the lowest levels go first: ``queue_size`` is the budget of
INFO records; DEBUG and TRACE are refused at 90 % of it, WARN may use 10 % more and ERROR/FATAL
25 % more. Each refusal is counted per level and the counts are logged (as one WARN record) at
most every ``report_interval`` seconds.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from typing import IO, Any, Protocol

from logharbor.sdk.context import current
from logharbor.sdk.formatter import JSONFormatter, level_name, render
from logharbor.sdk.sampling import Sampler
from logharbor.types import JsonObject, WireRecord

__all__ = ["AsyncHandler", "FileOutput", "Output", "StreamOutput"]

_IMMUTABLE = frozenset({str, int, float, bool, type(None), bytes})
_BATCH = 512
_CHUNK = 128
_YIELD_SECONDS = 0.0002


class Output(Protocol):
    """Where rendered lines go (stdout, a file, the shipper). Called from the worker thread only."""

    def write(self, lines: list[bytes]) -> None:
        """Write a batch of NDJSON lines (each ending in a newline)."""

    def flush(self, timeout: float = 10.0) -> bool:
        """Push buffered data down (the stream's buffer; the shipper sends what it holds);
        False when it could not finish within ``timeout`` seconds."""

    def close(self, timeout: float) -> None:
        """Flush and release resources, waiting at most ``timeout`` seconds."""


class StreamOutput:
    """Writes to a stream such as ``sys.stdout`` — the bytes buffer when it has one."""

    def __init__(self, stream: IO[Any]) -> None:
        self.stream = stream

    def write(self, lines: list[bytes]) -> None:
        data = b"".join(lines)
        buffer = getattr(self.stream, "buffer", None)
        try:
            if buffer is not None:
                self.stream.flush()  # keep order with text already written by print()
                buffer.write(data)
                buffer.flush()
            else:
                self.stream.write(data.decode("utf-8"))
                self.stream.flush()
        except (OSError, ValueError):  # closed pipe or stream: nothing useful left to do
            pass

    def flush(self, timeout: float = 10.0) -> bool:
        try:
            self.stream.flush()
        except (OSError, ValueError):
            pass
        return True

    def close(self, timeout: float) -> None:
        self.flush()


class FileOutput:
    """Appends to a file and reopens it when it was rotated away (logrotate, the agent's tests).

    Checks the path's inode once per batch, which is cheap and catches both ``rename`` and
    ``copytruncate`` rotation (the latter is followed by writes at the new, shorter end).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._file = open(self.path, "ab")
        self._ino = os.fstat(self._file.fileno()).st_ino

    def write(self, lines: list[bytes]) -> None:
        try:
            st = os.stat(self.path)
            rotated = st.st_ino != self._ino
        except FileNotFoundError:
            rotated = True
        if rotated or self._file.closed:  # closed: a line logged after close() at exit
            self._file.close()
            self._file = open(self.path, "ab")
            self._ino = os.fstat(self._file.fileno()).st_ino
        self._file.write(b"".join(lines))
        self._file.flush()

    def flush(self, timeout: float = 10.0) -> bool:
        self._file.flush()
        return True

    def close(self, timeout: float) -> None:
        self._file.close()

    def after_fork(self) -> None:
        """The child gets its own file object (the parent's may hold an internal lock)."""
        self._file = open(self.path, "ab")
        self._ino = os.fstat(self._file.fileno()).st_ino


def _level_limits(queue_size: int) -> list[int]:
    share = {"TRACE": 0.9, "DEBUG": 0.9, "INFO": 1.0, "WARN": 1.1, "ERROR": 1.25, "FATAL": 1.25}
    return [max(1, int(queue_size * share[level_name(n)])) for n in range(61)]


class AsyncHandler(logging.Handler):
    """A bounded-queue ``logging.Handler`` drained by a background thread.

    ``outputs`` receive the rendered lines; ``sampler`` (optional) drops records in the caller
    before they are queued. ``flush()`` waits until everything queued so far is written;
    ``close()`` (also run at interpreter exit) drains the queue and closes the outputs.
    """

    def __init__(
        self,
        outputs: Sequence[Output],
        formatter: JSONFormatter | None = None,
        *,
        level: int = logging.NOTSET,
        queue_size: int = 10_000,
        sampler: Sampler | None = None,
        report_interval: float = 30.0,
        flush_interval: float = 0.1,
    ) -> None:
        super().__init__(level)
        self.formatter: JSONFormatter = formatter or JSONFormatter()
        self.outputs = list(outputs)
        self.sampler = sampler
        self.queue_size = queue_size
        self.report_interval = report_interval
        self.flush_interval = flush_interval
        self.dropped = [0] * 61  # per levelno: refused because the queue was full
        self.sampled_out = 0
        self.written = 0
        self._limits = _level_limits(queue_size)
        self._yield_below = queue_size // 2
        self._io_lock = threading.Lock()
        self._start()
        ref = weakref.ref(self)
        atexit.register(_close_ref, ref)
        os.register_at_fork(before=lambda: _call_ref(ref, "_before_fork"),
                            after_in_parent=lambda: _call_ref(ref, "_after_fork_parent"),
                            after_in_child=lambda: _call_ref(ref, "_after_fork"))

    # -- caller side: keep it short ----------------------------------------------------------

    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        """Enqueue a record (no lock, no I/O); returns False when it was sampled out or refused."""
        ctx = current()
        attrs = record.__dict__
        levelno = attrs["levelno"]
        if self.sampler is not None and not self.sampler.keep(levelno, ctx.get("trace_id")):
            self.sampled_out += 1
            return False
        if self.filters and not self.filter(record):
            return False
        exc_info = attrs["exc_info"]
        if exc_info and type(exc_info) is tuple and getattr(exc_info[1], "_logharbor_logged", False):
            return False  # the middleware's access record already carries this exception
        attrs["_lh_ctx"] = ctx
        args = attrs["args"]
        if args and (type(args) is not tuple or not _IMMUTABLE.issuperset(map(type, args))):
            # mutable arguments are formatted now: they may change before the worker runs
            attrs["msg"] = record.getMessage()
            attrs["args"] = None
        queue = self._queue
        if len(queue) >= self._limits[levelno if levelno < 60 else 60]:
            self.dropped[levelno if levelno < 60 else 60] += 1
            return False
        queue.append(record)
        if self._idle and (levelno >= 40 or len(queue) >= _BATCH):
            self._wakeup.set()
        return True

    def emit(self, record: logging.LogRecord) -> None:
        """``logging.Handler`` interface; :meth:`handle` does the work."""
        self.handle(record)

    # -- worker side ---------------------------------------------------------------------------

    def _start(self) -> None:
        self._queue: deque[logging.LogRecord] = deque()
        self._wakeup = threading.Event()
        self._drained = threading.Condition()
        self._idle = False
        self._busy = False
        self._running = True
        self._reported = [0] * 61
        self._last_report = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="logharbor-sdk", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                with self._drained:
                    self._busy = False
                    self._drained.notify_all()
                if not self._running:
                    break
                self._idle = True
                if not queue:
                    self._wakeup.wait(self.flush_interval)
                    self._wakeup.clear()
                self._idle = False
                self._maybe_report()
                continue
            self._busy = True
            batch: list[bytes] = []
            render_one = self.formatter.render
            step_aside = False
            taken = 0
            while queue and taken < _BATCH:
                record = queue.popleft()
                taken += 1
                try:
                    line = render_one(record)
                except Exception:  # a processor bug must not kill the thread
                    line = self._internal_line(logging.ERROR, "logharbor sdk: a record failed to render",
                                               {"logger_name": record.name})
                if line is not None:
                    batch.append(line)
                if taken % _CHUNK == 0 and queue and len(queue) < self._yield_below:
                    step_aside = True
                    break
            self._write(batch)
            if step_aside:
                # callers are logging right now: step aside so they get the GIL back at once
                # instead of after the 5 ms switch interval (catching up resumes at half full)
                time.sleep(_YIELD_SECONDS)

    def _write(self, batch: list[bytes]) -> None:
        if not batch:
            return
        with self._io_lock:  # a fork waits for the write in progress (no half-held file locks)
            self._write_locked(batch)

    def _write_locked(self, batch: list[bytes]) -> None:
        for output in self.outputs:
            try:
                output.write(batch)
            except Exception as exc:  # an output failing must not stop the others
                print(f"logharbor sdk: output {type(output).__name__} failed: {exc}", file=sys.stderr)
        self.written += len(batch)

    def _internal_line(self, levelno: int, message: str, fields: WireRecord) -> bytes:
        record = logging.LogRecord("logharbor.sdk", levelno, __file__, 0, message, None, None)
        record._lh_ctx = {}
        out = self.formatter.build(record)
        out.update(fields)
        return render(out)

    def _maybe_report(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_report < self.report_interval:
            return
        self._last_report = now
        dropped = list(self.dropped)
        delta = {level_name(n): dropped[n] - self._reported[n]
                 for n in range(61) if dropped[n] > self._reported[n]}
        if not delta:
            return
        counts: dict[str, int] = {}
        for name, count in delta.items():
            counts[name] = counts.get(name, 0) + count
        self._reported = dropped
        total = sum(counts.values())
        line = self._internal_line(
            logging.WARNING, f"logharbor sdk: dropped {total} log records (queue full)",
            {"dropped": counts, "dropped_total": sum(dropped)},
        )
        self._write([line])

    # -- control -----------------------------------------------------------------------------

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every record queued before this call is written; False on timeout."""
        if not self._thread.is_alive():
            return not self._queue
        deadline = time.monotonic() + timeout
        with self._drained:
            self._busy = True if self._queue else self._busy
            self._wakeup.set()
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._drained.wait(min(left, 0.05))
                self._wakeup.set()
        done = True
        for output in self.outputs:
            done = output.flush(max(0.0, deadline - time.monotonic())) and done
        return done

    def stats(self) -> JsonObject:
        """Counters for tests and health pages: written, dropped per level, sampled out, queued."""
        dropped: dict[str, int] = {}
        for n, count in enumerate(self.dropped):
            if count:
                dropped[level_name(n)] = dropped.get(level_name(n), 0) + count
        return {"written": self.written, "dropped": dropped, "sampled_out": self.sampled_out,
                "queued": len(self._queue)}

    def close(self, timeout: float = 5.0) -> None:
        """Drain the queue, report drops, close the outputs (idempotent)."""
        if getattr(self, "_closed", False):
            return
        self._closed = True
        self._running = False
        self._wakeup.set()
        self._thread.join(timeout)
        self._maybe_report(force=True)
        # from now on there is no worker: lines logged later (by exit handlers that run after
        # this one) are written at once instead of being queued for nobody
        self.handle = self._handle_after_close  # type: ignore[method-assign]
        for output in self.outputs:
            try:
                output.close(timeout)
            except Exception as exc:
                print(f"logharbor sdk: closing {type(output).__name__} failed: {exc}", file=sys.stderr)
        super().close()

    def _handle_after_close(self, record: logging.LogRecord) -> bool:
        if self.sampler is not None and not self.sampler.keep(record.levelno, current().get("trace_id")):
            return False
        if self.filters and not self.filter(record):
            return False
        try:
            line = self.formatter.render(record)
        except Exception:
            return False
        if line is not None:
            self._write([line])
        return True

    def _before_fork(self) -> None:
        self._io_lock.acquire()

    def _after_fork_parent(self) -> None:
        self._io_lock.release()

    def _after_fork(self) -> None:
        """In a forked child the worker thread is gone: start a fresh one with an empty queue
        (what the parent had queued is the parent's to write) and reopen what needs it."""
        self._io_lock = threading.Lock()
        if not getattr(self, "_closed", False):
            self.formatter.after_fork()
            for output in self.outputs:
                reopen = getattr(output, "after_fork", None)
                if reopen is not None:
                    reopen()
            self.dropped = [0] * 61
            self._start()


def _close_ref(ref: weakref.ref[AsyncHandler]) -> None:
    handler = ref()
    if handler is not None:
        handler.close()


def _call_ref(ref: weakref.ref[AsyncHandler], method: str) -> None:
    handler = ref()
    if handler is not None:
        getattr(handler, method)()
