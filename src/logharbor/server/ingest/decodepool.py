"""Where ingest decodes large bodies: threads of the server process or worker processes.

Decoding a body is CPU work. A decoder that holds the GIL (the Python path, and a compiled path
that still works on Python objects) uses the second core only from another process, at the price
of the hand-off: the body is pickled out and ~1.7 MB of rows come back per 2,000-record request.
A decoder that releases the GIL (``logharbor.server.ingest.decoder.RELEASES_GIL``) runs as well
in threads of the server process, with no hand-off at all.

``ingest_decode`` chooses (docs/server.md "Where bodies are decoded"):

- ``processes``: every offloaded decode runs in ``workers`` worker processes (spawned, so they
  share nothing with the engine's threads).
- ``threads``: every offloaded decode runs in ``workers`` threads of the server process.
- ``auto`` (default): a decode that releases the GIL (the caller says so) runs in the threads,
  every other in the processes; the processes are started only when first needed.

What a worker's death did and does: a worker *process* can die (the OOM killer, a crash in
compiled code). ``concurrent.futures`` then fails every body in the pool and refuses every later
one for ever (the old pool answered each later request with a 500). Here the broken pool is
replaced, and each body it held is decoded once more in the new pool; a body that breaks the new
pool too is answered :class:`DecodeFailed` (HTTP 503 with ``Retry-After``): nothing of it was
written, nothing acknowledged, so the sender's retry (same Idempotency-Key) is safe. A *thread*
cannot be killed, and cannot die alone: an exception fails only its own request, and a crash in
compiled code ends the whole server, which loses nothing acknowledged (acknowledgement follows the
WAL's fsync; a restart replays the WAL) while the senders retry what was not acknowledged. What
replaces killing a runaway decode is seeing it: ``logharbor_ingest_decode_oldest_seconds`` and a
log line once a decode runs past ``slow_s``.

Bounded: at most ``2 × workers`` bodies are handed to the executor at once; the others wait on the
event loop (``logharbor_ingest_decode_waiting``), so a burst never queues unbounded work in the
executor, and what waits is bounded by the connection limits and the body size limit.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Literal, TypeVar

from logharbor.threadnames import name_os_thread

__all__ = ["MODES", "DecodeFailed", "DecodePool", "choose"]

T = TypeVar("T")
log = logging.getLogger("logharbor.server.ingest.decode")

Mode = Literal["auto", "threads", "processes"]
MODES: tuple[Mode, ...] = ("auto", "threads", "processes")


class DecodeFailed(Exception):
    """A body's decode was lost with the worker process decoding it, twice: not stored, not
    acknowledged; the sender may send it again (HTTP 503 with ``Retry-After``)."""


def choose(mode: Mode, workers: int, releases_gil: bool) -> tuple[str, str]:
    """Where a GIL-releasing decode (native NDJSON) runs, ``threads`` or ``processes``, and why."""
    if workers <= 0:
        return "threads", "ingest_workers is 0: no worker processes"
    if mode == "threads":
        return "threads", "ingest_decode is threads"
    if mode == "processes":
        return "processes", "ingest_decode is processes"
    if releases_gil:
        return "threads", "auto: the NDJSON decoder releases the GIL"
    return "processes", "auto: the NDJSON decoder holds the GIL"


def _thread_init() -> None:
    name_os_thread("lh-decode")


#: how often a worker process checks that the server that started it is still there
ORPHAN_CHECK_S = 0.5


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(ORPHAN_CHECK_S)
    os._exit(0)  # the server is gone (kill -9, a crash): nothing can read what this worker makes


def _process_init(parent: int, init: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    """Start a worker process: a thread that ends it once its server is gone, then ``init``.

    Without it a server killed with -9 left its workers behind for ever, blocked writing a decoded
    body to a pipe nobody reads (each holding its memory; one set more at every crash-restart).
    """
    threading.Thread(target=_watch_parent, args=(parent,), name="lh-orphan-watch", daemon=True).start()
    if init is not None:
        init(*initargs)


class DecodePool:
    """The decode executors of one server and their bound; see the module docstring."""

    def __init__(self, mode: Mode, workers: int, *, releases_gil: bool,
                 worker_init: Callable[..., None] | None = None, initargs: tuple[Any, ...] = (),
                 slow_s: float = 30.0) -> None:
        if mode not in MODES:
            raise ValueError(f"ingest_decode must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode
        self.workers = workers
        #: threads of the thread pool (with no worker processes: one per core, at most 8)
        self.threads = workers or min(os.cpu_count() or 1, 8)
        #: where a decode that releases the GIL runs, and why (start log, /metrics)
        self.gil_free_in, self.reason = choose(mode, workers, releases_gil)
        #: where every other decode runs
        self.others_in = "threads" if workers <= 0 or mode == "threads" else "processes"
        self._worker_init, self._initargs = worker_init, initargs
        self._threads: ThreadPoolExecutor | None = None
        self._processes: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self.slots = max(2, 2 * workers)
        self._busy = 0
        self._waiting = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._running: dict[int, float] = {}  # id → monotonic start of each decode under way
        self._ids = itertools.count()
        self.slow_s = slow_s
        #: worker processes lost (each replaced the whole pool)
        self.worker_deaths = 0
        #: bodies decoded since start, by where they ran (so a test or an operator can see which
        #: path served them, not only which one was configured)
        self.decoded = {"threads": 0, "processes": 0}
        self._closed = False

    def describe(self) -> str:
        """One line for the start log."""
        n = self.threads
        gil_free = f"{n} threads of the server process" if self.gil_free_in == "threads" \
            else f"{self.workers} worker processes"
        others = f"{n} threads" if self.others_in == "threads" else f"{self.workers} worker processes"
        return (f"ingest decode: NDJSON bodies in {gil_free} ({self.reason}); bodies of the other "
                f"protocols in {others}")

    # -- executors -----------------------------------------------------------------------------

    def _executor(self, gil_free: bool) -> Executor:
        with self._lock:
            if self._closed:
                raise RuntimeError("the decode pool is closed")
            if (self.gil_free_in if gil_free else self.others_in) == "threads":
                if self._threads is None:
                    self._threads = ThreadPoolExecutor(max_workers=self.threads, initializer=_thread_init,
                                                       thread_name_prefix="ingest-decode")
                return self._threads
            if self._processes is None:
                self._processes = self._new_processes()
            return self._processes

    def _new_processes(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("spawn"),
                                   initializer=_process_init,
                                   initargs=(os.getpid(), self._worker_init, self._initargs))

    def _replace_broken(self, broken: Executor) -> None:
        """Replace the process pool if it is still ``broken`` (the first caller to see it does)."""
        with self._lock:
            if self._processes is not broken or self._closed:
                return
            self.worker_deaths += 1
            log.error("ingest decode: a worker process died (%d since start); the pool is replaced and "
                      "the bodies it held are decoded again", self.worker_deaths)
            self._processes = self._new_processes()
        broken.shutdown(wait=False, cancel_futures=True)

    # -- running -------------------------------------------------------------------------------

    async def _slot(self) -> None:
        """Wait until fewer than :attr:`slots` bodies are in the executors, then take one."""
        while self._busy >= self.slots:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            self._waiting += 1
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken and cancelled at once: the slot goes to the next one
                raise
            finally:
                self._waiting -= 1
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self._busy += 1

    def _release(self) -> None:
        self._busy -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def run(self, fn: Callable[..., T], *args: Any, releases_gil: bool = False) -> T:
        """``fn(*args)`` in the executor its kind goes to (``fn`` and ``args`` picklable).

        ``releases_gil``: ``fn`` releases the GIL while it works, so threads serve it as well as
        processes. :class:`DecodeFailed` when its worker process died twice.
        """
        await self._slot()
        ident = next(self._ids)
        self._running[ident] = time.monotonic()
        try:
            loop = asyncio.get_running_loop()
            for attempt in (1, 2):
                executor = self._executor(releases_gil)
                try:
                    result = await loop.run_in_executor(executor, fn, *args)
                    self.decoded["threads" if executor is self._threads else "processes"] += 1
                    return result
                except BrokenProcessPool:
                    self._replace_broken(executor)
                    if attempt == 2:
                        raise DecodeFailed("the worker process decoding this body died twice "
                                           "(a crash or the out-of-memory killer); nothing of it was "
                                           "stored") from None
            raise AssertionError("unreachable")
        finally:
            started = self._running.pop(ident)
            if time.monotonic() - started > self.slow_s:
                log.warning("ingest decode: a body took %.1f s to decode (over %.0f s)",
                            time.monotonic() - started, self.slow_s)
            self._release()

    def gauges(self) -> dict[str, float]:
        """For /metrics: bodies decoding, waiting, the oldest decode's age, workers lost."""
        now = time.monotonic()
        oldest = max((now - t for t in list(self._running.values())), default=0.0)
        return {"logharbor_ingest_decode_busy": float(self._busy),
                "logharbor_ingest_decode_waiting": float(self._waiting),
                "logharbor_ingest_decode_oldest_seconds": round(oldest, 3),
                "logharbor_ingest_decode_worker_deaths_total": float(self.worker_deaths),
                "logharbor_ingest_decoded_in_threads_total": float(self.decoded["threads"]),
                "logharbor_ingest_decoded_in_processes_total": float(self.decoded["processes"])}

    def close(self) -> None:
        with self._lock:
            self._closed = True
            executors = [e for e in (self._threads, self._processes) if e is not None]
        for executor in executors:
            executor.shutdown(wait=True, cancel_futures=True)
