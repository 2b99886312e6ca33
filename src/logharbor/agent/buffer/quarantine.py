"""Damaged disk-buffer bytes are copied aside before the buffer skips them.

Each damaged span becomes two files in ``<buffer dir>/quarantine/``: ``<segment>-<offset>.bad``
(the bytes exactly as they were: still sealed when encryption at rest is on) and, written after
it, ``<segment>-<offset>.json`` (where they came from and why they were set aside). A ``.bad``
without its ``.json`` is a copy that was interrupted; the next finder writes both again. The
same layout as the server's WAL quarantine (``docs/reliability.md``), so one procedure serves
both: recover what is legible by hand, send it again, delete the files (they hold log data).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import orjson

from logharbor.agent import telemetry
from logharbor.agent.buffer.segments import Segment
from logharbor.durable import write_atomic
from logharbor.framing import BadSpan
from logharbor.types import JsonObject

__all__ = ["Quarantine"]


class Quarantine:
    """Copies a buffer's damaged spans aside once each; logs and counts them for one sink."""

    def __init__(self, directory: Path, sink: str) -> None:
        self.directory = directory
        self.sink = sink
        self._seen: set[tuple[int, int]] = set()
        self._lock = threading.Lock()
        self._gauge = telemetry.METRICS.buffer_quarantine_files.labels(sink)
        self._gauge.set(self.files())

    def keep(self, seg: Segment, span: BadSpan, data: bytes) -> bool:
        """Copy ``data`` (the span's bytes) aside with its sidecar; True once both are durable."""
        with self._lock:
            if (seg.number, span.start) in self._seen:
                return True
        stem = f"{seg.path.name}-{span.start:012d}"
        sidecar = self.directory / f"{stem}.json"
        copy = self.directory / f"{stem}.bad"
        already = sidecar.exists()
        if not already:
            info: JsonObject = {
                "segment": seg.path.name, "format": seg.label, "offset": span.start, "size": span.size,
                "seq_first": span.seq_first, "seq_last": span.seq_last, "reason": span.reason,
                "found_at": datetime.now(UTC).isoformat(timespec="seconds"), "sink": self.sink,
            }
            try:
                self.directory.mkdir(mode=0o700, exist_ok=True)
                write_atomic(copy, bytes(data), mode=0o600)
                write_atomic(sidecar, orjson.dumps(info, option=orjson.OPT_INDENT_2), mode=0o600)
            except OSError as exc:
                telemetry.buffer_damage_not_kept(self.sink, seg.path.name, span.start, span.size,
                                                 f"{self.directory}: {exc.strerror or exc}")
                return False
        telemetry.buffer_damage(self.sink, seg.path.name, span.start, span.size, span.reason, str(copy),
                                already=already)
        with self._lock:
            self._seen.add((seg.number, span.start))
        self._gauge.set(self.files())
        return True

    def torn(self, seg: Segment, span: BadSpan) -> None:
        """A torn tail (never acknowledged): logged with its size and counted, not copied."""
        telemetry.buffer_torn(self.sink, seg.path.name, span.start, span.size, span.reason)

    def files(self) -> int:
        """Damaged spans kept in the quarantine directory (from this run and earlier ones)."""
        try:
            return sum(1 for _ in self.directory.glob("*.bad"))
        except OSError:
            return 0
