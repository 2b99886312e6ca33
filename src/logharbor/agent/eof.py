"""End of input for an agent whose every source ends (``app | logharbor agent``, the sidecar shape).

Such an agent has nothing left to do once its input ended, so it must not wait for a signal that
may never come: it delivers what it holds and exits, and its exit status says whether everything
arrived. A source is *finite* when it has ``finite = True``; it then counts ``records_read`` and
``records_failed`` (records in chunks a sink refused or dropped), has ``ended`` (its input ended,
not merely a stop), and its ``cfg.eof_timeout_secs`` bounds the wait.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from logharbor.agent import telemetry
from logharbor.agent.types import Sink, Source

__all__ = ["input_ended", "wait_delivered"]


def input_ended(sources: Iterable[tuple[Source, threading.Thread | None]]) -> bool:
    """Whether there are sources, every one of them finite and finished reading its input."""
    found = False
    for source, thread in sources:
        if not getattr(source, "finite", False) or not getattr(source, "ended", False):
            return False
        if thread is not None and thread.is_alive():
            return False
        found = True
    return found


def wait_delivered(sources: list[Any], sinks: list[Sink], stop: threading.Event) -> int:
    """Wait (up to the longest ``eof_timeout_secs``, or until ``stop``) until every chunk is
    acknowledged and every sink's buffer is empty; log the outcome; the exit status (0 or 1)."""
    timeout = max(s.cfg.eof_timeout_secs for s in sources)
    deadline = time.monotonic() + timeout

    def held() -> int:
        return sum(s.pending() for s in sources) + sum(sink.buffer.size()[1] for sink in sinks)

    while held() and time.monotonic() < deadline and not stop.is_set():
        stop.wait(0.05)
    read = sum(s.records_read for s in sources)
    failed = sum(s.records_failed for s in sources)
    waiting = sum(sink.buffer.size()[1] for sink in sinks)
    pending = sum(s.pending() for s in sources)
    if not failed and not waiting and not pending:
        telemetry.event(logging.INFO, "end of input: every record delivered; exiting", records=read)
        return 0
    why = []
    if failed:
        why.append(f"{failed} refused or dropped by a sink (see the errors above; a dead letter file "
                   "has them if configured)")
    if waiting or pending:
        why.append(f"{waiting} still in sink buffers and {pending} chunks unacknowledged after "
                   f"{timeout:g} s (eof_timeout_secs); a disk buffer keeps its records for the next start")
    telemetry.event(logging.ERROR, "end of input: not every record was delivered; exiting with status 1",
                    records=read, refused_or_dropped=failed, undelivered=waiting,
                    unacknowledged_chunks=pending, why="; ".join(why))
    return 1
