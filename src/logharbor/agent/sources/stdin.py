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
from logharbor.agent.types import Ack, AckStatus, Chunk
from logharbor.types import JsonObject

__all__ = ["Config", "StdinSource"]


class Config(SourceConfig):
    """Options of the ``stdin`` source."""

    type: Literal["stdin"]
    read_block_bytes: int = Field(default=256 * 1024, ge=4096)
    multiline: JsonObject | None = None
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
        carry = b""
        while not stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.25)
            if not ready:
                if self.agg is not None and self.agg.pending():
                    self._send(self.agg.flush(time.monotonic()), 0, emit)
                continue
            data = os.read(self.fd, self.cfg.read_block_bytes)
            if not data:
                if carry:
                    self._emit(carry + b"\n", emit)
                if self.agg is not None:
                    self._send(self.agg.close(), 0, emit)
                self.ended = True
                telemetry.event(20, "end of input", source=self.name, records=self.records_read)
                return
            data = carry + data
            cut = data.rfind(b"\n") + 1
            if cut == 0 and len(data) < self.cfg.read_block_bytes:
                carry = data
                continue
            cut = cut or len(data)
            carry = data[cut:]
            self._emit(data[:cut], emit)

    def _emit(self, body: bytes, emit: Callable[[Chunk], None]) -> None:
        lines = [line for line in body.decode("utf-8", "replace").replace("\r\n", "\n").split("\n") if line]
        if self.agg is not None:
            now = time.monotonic()
            events: list[str] = []
            for line in lines:
                events.extend(self.agg.feed(line, now))
            lines = events
        self._send(lines, len(body), emit)

    def _send(self, lines: list[str], nbytes: int, emit: Callable[[Chunk], None]) -> None:
        if not lines and not nbytes:
            return
        with self._lock:
            self._pending += 1
            self.records_read += len(lines)
        telemetry.METRICS.lines_read.labels(self.name).inc(len(lines))
        telemetry.METRICS.bytes_read.labels(self.name).inc(nbytes)
        ack = Ack(self.sinks, partial(self._done, records=len(lines)))
        emit(Chunk(lines, ack, nbytes, dict(self.meta), None, time.time_ns()))
