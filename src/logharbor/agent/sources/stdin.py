"""Read lines from standard input (``stdin``): for a sidecar fed by a pipe, or ``app | agent``.

A pipe cannot be re-read, so there is no checkpoint: what was acknowledged is gone from the pipe,
what was not is lost with the process. At end of input the source ships its last line (even
without a newline) and any multiline event still open, and stops. When every source of the agent
is a ``stdin`` source (the sidecar shape, ``app | logharbor agent``), the agent then delivers
everything it holds, waiting up to ``eof_timeout_secs`` for the sinks' acknowledgements, and exits:
0 when every record was delivered, 1 (with a log line saying how many were not, and why) when some
were refused, dropped, or still undelivered at the deadline (see ``pipeline.Agent.run``).
"""

from __future__ import annotations

import os
import select
import socket
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from logharbor.agent import telemetry
from logharbor.agent.sources.common import SourceConfig
from logharbor.agent.sources.tailed import utf8_prefix
from logharbor.agent.types import Ack, AckStatus, Chunk
from logharbor.types import JsonObject, RawRecord

__all__ = ["Config", "StdinSource"]


class Config(SourceConfig):
    """Options of the ``stdin`` source."""

    type: Literal["stdin"]
    read_block_bytes: int = Field(default=256 * 1024, ge=4096)
    multiline: JsonObject | None = None
    #: the longest line shipped whole (joined across reads); a longer one ships its first
    #: max_line_bytes with ``truncated: true`` and ``original_bytes`` (logged, counted)
    max_line_bytes: int = Field(default=256 * 1024, ge=1024, le=256 * 1024 * 1024)
    #: after end of input, how long the agent waits for every record to be delivered before it
    #: gives up and exits 1 (sinks retry meanwhile, honouring Retry-After)
    eof_timeout_secs: float = Field(default=60.0, gt=0)


class StdinSource:
    """The ``stdin`` source; ``finite``: its input ends, and the agent may exit once it has."""

    finite = True

    def __init__(self, name: str, cfg: Config, data_dir: Path, sinks: int, fd: int | None = None) -> None:
        self.name = name
        self.cfg = cfg
        self.sinks = sinks
        self.fd = sys.stdin.fileno() if fd is None else fd
        self._pending = 0
        self._lock = threading.Lock()
        self.records_read = 0
        self.records_failed = 0  # in chunks that a sink refused or dropped
        self.ended = False
        self.meta = {"source": "stdin", "host": socket.gethostname(), **cfg.fields}
        self.agg: Any = None
        if cfg.multiline is not None:  # CRI container output (P/F partials), stack traces
            from logharbor.formats.multiline import build_multiline

            self.agg = build_multiline(**cfg.multiline)

    def _done(self, ack: Ack, records: int) -> None:
        with self._lock:
            self._pending -= 1
            if ack.status != AckStatus.DELIVERED:
                self.records_failed += records

    def pending(self) -> int:
        return self._pending

    def close(self) -> None:
        """Nothing to persist: a pipe has no position to come back to."""

    def run(self, emit: Callable[[Chunk], None], stop: threading.Event) -> None:
        carry = b""  # the start of a line without its newline yet
        cut_len = 0  # in an over-long line: its length so far (its first max_line_bytes in carry)
        limit = self.cfg.max_line_bytes
        block = min(self.cfg.read_block_bytes, limit)  # a line that ends within a read is within the limit
        while not stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.25)
            if not ready:
                if self.agg is not None and self.agg.pending():
                    self._send(self.agg.flush(time.monotonic()), 0, emit)
                continue
            data = os.read(self.fd, block)
            if not data:
                if cut_len:
                    self._emit_cut(carry, cut_len, emit)
                elif carry:
                    self._emit(carry + b"\n", emit)
                if self.agg is not None:
                    self._send(self.agg.close(), 0, emit)
                self.ended = True
                telemetry.event(20, "end of input", source=self.name, records=self.records_read)
                return
            if cut_len:  # the rest of an over-long line: up to its newline
                nl = data.find(b"\n")
                if nl < 0:
                    cut_len += len(data)
                    continue
                self._emit_cut(carry, cut_len + nl, emit)
                carry, cut_len, data = b"", 0, data[nl + 1:]
            if carry:
                data = carry + data
            if len(data) > limit and data.find(b"\n", 0, limit + 1) < 0:  # its first line is over-long
                nl = data.find(b"\n")
                if nl < 0:
                    carry, cut_len = data[:limit], len(data)
                    continue
                self._emit_cut(data[:limit], nl, emit)
                data = data[nl + 1:]
            cut = data.rfind(b"\n") + 1
            carry = data[cut:]  # (at most max_line_bytes: a longer first line was cut above)
            if cut:
                self._emit(data[:cut], emit)

    def _emit_cut(self, prefix: bytes, length: int, emit: Callable[[Chunk], None]) -> None:
        """An over-long line as its first bytes, marked ``truncated`` with its ``original_bytes``
        (without its newline); logged and counted."""
        kept = utf8_prefix(prefix, self.cfg.max_line_bytes)
        if self.agg is not None:  # an open event ends before the cut line
            self._send(self.agg.close(), 0, emit)
        telemetry.line_truncated(self.name, "stdin", None, length, len(kept))
        self._send([kept.decode("utf-8", "replace")], len(kept), emit,
                   {"truncated": True, "original_bytes": length})

    def _emit(self, body: bytes, emit: Callable[[Chunk], None]) -> None:
        lines = [line for line in body.decode("utf-8", "replace").replace("\r\n", "\n").split("\n") if line]
        if self.agg is not None:
            now = time.monotonic()
            events: list[str] = []
            for line in lines:
                events.extend(self.agg.feed(line, now))
            lines = events
        self._send(lines, len(body), emit)

    def _send(self, lines: list[str], nbytes: int, emit: Callable[[Chunk], None],
              fields: RawRecord | None = None) -> None:
        """One chunk; ``fields``: added to each of its records (how its line was cut)."""
        if not lines and not nbytes:
            return
        if fields is None and self.agg is not None and not all(type(x) is str for x in lines):
            self._send_marked(lines, nbytes, emit)
            return
        with self._lock:
            self._pending += 1
            self.records_read += len(lines)
        telemetry.METRICS.lines_read.labels(self.name).inc(len(lines))
        telemetry.METRICS.bytes_read.labels(self.name).inc(nbytes)
        ack = Ack(self.sinks, partial(self._done, records=len(lines)))
        meta = {**self.meta, **fields} if fields else dict(self.meta)
        emit(Chunk(lines, ack, nbytes, meta, None, time.time_ns()))

    def _send_marked(self, events: list[str], nbytes: int, emit: Callable[[Chunk], None]) -> None:
        """Multiline events some of which the aggregator cut or ended early: each of those in a
        chunk of its own, its fields (``truncated``, ``split``, ``partial``) in the chunk's meta."""
        from logharbor.formats.multiline import fields_of, utf8_len

        run: list[str] = []
        for event in events:
            fields = fields_of(event)
            if fields is None:
                run.append(event)
                continue
            self._send(run, 0, emit)
            run = []
            length = fields.get("original_bytes")
            if isinstance(length, int):
                telemetry.line_truncated(self.name, "stdin", None, length, utf8_len(event),
                                         why="multiline max_bytes")
            self._send([str(event)], 0, emit, dict(fields))
        self._send(run, nbytes, emit)
