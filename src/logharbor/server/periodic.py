"""A background job run every N seconds on its own thread, for the server's housekeeping."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["Periodic"]

log = logging.getLogger("logharbor.server")


class Periodic:
    """Calls ``work`` every ``interval_s`` seconds until stopped; a failing run is logged with
    ``what`` and the next one comes at the next interval (housekeeping must not die of one error).
    ``interval_s`` is read before each wait, so an owner may change it while running."""

    def __init__(self, name: str, work: Callable[[], object], interval_s: Callable[[], float],
                 what: str) -> None:
        self.name = name
        self.work = work
        self.interval_s = interval_s
        self.what = what
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Ask the loop to end and wait for the run in progress (up to ``timeout`` seconds)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.work()
            except Exception:
                log.exception("%s failed; trying again next interval", self.what)
            self._stop.wait(self.interval_s())
