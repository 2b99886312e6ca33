"""The agent's own telemetry: Prometheus metrics on its own port, and its log as JSON lines.

Each noteworthy event is one function here (``file_rotated``, ``checkpoint_written``…) that both
logs and counts, so the log and ``/metrics`` never disagree and call sites stay one line long.
Metrics live in a private registry: several agents in one test process do not collide, and the
process-wide default collectors are added explicitly.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
import time
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import orjson
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    make_wsgi_app,
)
from prometheus_client import (
    ProcessCollector as _ProcessCollector,
)

from logharbor.types import WireRecord

__all__ = ["METRICS", "Metrics", "log", "setup_logging", "shown", "start_metrics_server"]

log = logging.getLogger("logharbor.agent")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, message and the event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line."""
        out: WireRecord = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int((record.created % 1) * 1_000_000):06d}Z",
            "level": record.levelname.replace("WARNING", "WARN"),
            "service": "logharbor-agent",
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            out.update(fields)
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        try:
            return orjson.dumps(out, default=str).decode()
        except TypeError:  # a str that is not UTF-8 (a file name of other bytes): shown escaped
            return orjson.dumps(_shown_all(out), default=str).decode()


def shown(text: str) -> str:
    """``text`` as valid UTF-8: bytes a file name holds that are not UTF-8 (kept by Python as
    surrogates) shown as ``\\xNN``, so a log line, a metric label or a record field can hold it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


def _shown_all(value: Any) -> Any:
    if isinstance(value, str):
        return shown(value)
    if isinstance(value, dict):
        return {shown(str(k)): _shown_all(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_shown_all(v) for v in value]
    return value


def setup_logging(level: str = "info", stream: Any = None) -> None:
    """Route the agent's logger to ``stream`` (stderr by default) as JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    log.handlers[:] = [handler]
    log.setLevel(level.upper())
    log.propagate = False


def event(level: int, message: str, **fields: Any) -> None:
    """Log one event with structured fields."""
    if log.isEnabledFor(level):
        log.log(level, message, extra={"fields": fields})


class Metrics:
    """Every metric the agent exposes; one instance per process (tests may build their own)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        _ProcessCollector(registry=r)
        self.lines_read = Counter("logharbor_agent_lines_read", "Lines read", ["source"], registry=r)
        self.bytes_read = Counter("logharbor_agent_bytes_read", "Bytes read", ["source"], registry=r)
        self.records_sent = Counter(
            "logharbor_agent_records_sent", "Records delivered", ["sink"], registry=r)
        self.batches_sent = Counter(
            "logharbor_agent_batches_sent", "Batches delivered", ["sink"], registry=r)
        self.bytes_sent = Counter(
            "logharbor_agent_bytes_sent", "Bytes sent on the wire (compressed)", ["sink"], registry=r)
        self.retries = Counter("logharbor_agent_retries", "Failed attempts retried", ["sink"], registry=r)
        self.rejected = Counter(
            "logharbor_agent_records_rejected", "Records refused permanently", ["sink"], registry=r)
        self.dropped = Counter(
            "logharbor_agent_records_dropped", "Records dropped by a full buffer", ["sink"], registry=r)
        self.filtered = Counter(
            "logharbor_agent_records_filtered", "Records dropped by a transform", ["transform"],
            registry=r)
        self.buffer_bytes = Gauge(
            "logharbor_agent_buffer_bytes", "Bytes waiting in a sink's buffer", ["sink"], registry=r)
        self.buffer_events = Gauge(
            "logharbor_agent_buffer_events", "Records waiting in a sink's buffer", ["sink"], registry=r)
        self.file_lag = Gauge(
            "logharbor_agent_file_lag_bytes", "File size minus delivered offset", ["source", "path"],
            registry=r)
        self.files_open = Gauge("logharbor_agent_files_open", "Files being tailed", ["source"], registry=r)
        self.rotations = Counter(
            "logharbor_agent_file_rotations", "Rotations and truncations seen", ["source", "kind"],
            registry=r)
        self.checkpoints = Counter(
            "logharbor_agent_checkpoints_written", "Checkpoint writes", ["source"], registry=r)
        self.dropped_bytes = Counter(
            "logharbor_agent_dropped_bytes", "Bytes of input given up unread", ["source", "reason"],
            registry=r)
        self.lines_truncated = Counter(
            "logharbor_agent_lines_truncated", "Lines longer than max_line_bytes (max_message_bytes), "
            "shipped cut and marked truncated", ["source"], registry=r)
        self.connections_refused = Counter(
            "logharbor_agent_connections_refused", "Connections a listener refused at its max_connections",
            ["source"], registry=r)
        self.alb_objects = Counter(
            "logharbor_agent_alb_objects", "ALB log objects delivered whole", ["source"], registry=r)
        self.alb_late = Counter(
            "logharbor_agent_alb_objects_late",
            "ALB log objects found after objects that sort after them were read", ["source"], registry=r)
        self.alb_failed = Counter(
            "logharbor_agent_alb_object_failures", "ALB log objects that could not be read (retried)",
            ["source"], registry=r)
        self.buffer_corrupt_entries = Counter(
            "logharbor_agent_buffer_corrupt_entries",
            "Damaged spans of a disk buffer set aside in its quarantine (each held one entry or more)",
            ["sink"], registry=r)
        self.buffer_corrupt_bytes = Counter(
            "logharbor_agent_buffer_corrupt_bytes", "Bytes of damaged disk-buffer spans set aside",
            ["sink"], registry=r)
        self.buffer_torn_bytes = Counter(
            "logharbor_agent_buffer_torn_tail_bytes",
            "Bytes of torn tails cut off a disk buffer at start (written, never acknowledged)",
            ["sink"], registry=r)
        self.buffer_quarantine_files = Gauge(
            "logharbor_agent_buffer_quarantine_files",
            "Damaged spans kept in a disk buffer's quarantine directory (this run and earlier ones)",
            ["sink"], registry=r)
        self.state_damaged = Counter(
            "logharbor_agent_state_files_damaged",
            "State files (checkpoints, ALB read-set, buffer position) found damaged",
            ["kind"], registry=r)
        self.alb_known = Gauge(
            "logharbor_agent_alb_objects_remembered", "ALB objects remembered as read in the window",
            ["source"], registry=r)


METRICS = Metrics()


#: open connections the metrics port serves at once (a scraper needs one); more are closed at once
METRICS_MAX_CONNECTIONS = 64
#: a metrics connection that sends no request (or stalls) within this is closed
METRICS_TIMEOUT_S = 10.0


class _QuietHandler(WSGIRequestHandler):
    timeout = METRICS_TIMEOUT_S  # a client that connects and sends nothing holds no thread for long

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _MetricsServer(ThreadingMixIn, WSGIServer):
    """prometheus_client's thread-per-connection server with a cap and a read timeout.

    Why: its own server starts a thread for every connection and waits for a request line
    without a deadline, so a client opening thousands of idle sockets on the metrics port made
    thousands of threads in the agent. Over :data:`METRICS_MAX_CONNECTIONS` a connection is
    closed at once, counted (``logharbor_agent_connections_refused{source="metrics"}``) and
    logged once per burst (at most a line a minute).
    """

    daemon_threads = True
    # the listen backlog holds a burst up to the cap: with socketserver's 5 the kernel dropped the
    # SYNs of a burst and clients retried after 1, 3, 7 … s, so accepts spread over many seconds
    request_queue_size = 128

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.active = 0
        self.refused = 0
        self._lock = threading.Lock()
        self._unlogged = 0
        self._logged_at: float | None = None

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            full = self.active >= METRICS_MAX_CONNECTIONS
            if not full:
                self.active += 1
        if not full:
            super().process_request(request, client_address)
            return
        self.refused += 1
        METRICS.connections_refused.labels("metrics").inc()
        self._unlogged += 1
        now = time.monotonic()
        if self._logged_at is None or now - self._logged_at >= 60:
            event(logging.WARNING, "metrics connections refused: too many open", refused=self._unlogged,
                  max_connections=METRICS_MAX_CONNECTIONS, last_peer=str(client_address[0]))
            self._logged_at, self._unlogged = now, 0
        self.shutdown_request(request)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self.active -= 1

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out or hung up: nothing to report (socketserver prints a traceback)


def start_metrics_server(address: str, port: int, metrics: Metrics = METRICS) -> Any:
    """Serve ``/metrics`` in a daemon thread; returns the server (``shutdown()`` stops it)."""

    class Server(_MetricsServer):
        address_family = socket.AF_INET6 if ":" in address else socket.AF_INET

    server = make_server(address, port, make_wsgi_app(metrics.registry), Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True, name="agent-metrics").start()
    return server


# -- events --------------------------------------------------------------------------------------


def file_opened(source: str, path: str, offset: int, why: str) -> None:
    """A file is being tailed from ``offset`` (``why``: new, resumed, copy, rotated-away…)."""
    event(logging.INFO, "file opened", source=source, path=path, offset=offset, why=why)


def file_rotated(source: str, path: str, kind: str) -> None:
    """A tailed file was renamed, truncated or deleted."""
    METRICS.rotations.labels(source, kind).inc()
    event(logging.INFO, "file rotated", source=source, path=path, kind=kind)


def file_closed(source: str, path: str, offset: int) -> None:
    """A rotated or deleted file was read to its end and closed."""
    with contextlib.suppress(KeyError):
        METRICS.file_lag.remove(source, shown(path))
    event(logging.INFO, "file closed", source=source, path=path, offset=offset)


def checkpoint_written(source: str, files: int) -> None:
    """A checkpoint document was written."""
    METRICS.checkpoints.labels(source).inc()
    event(logging.DEBUG, "checkpoint written", source=source, files=files)


def batch_retry(sink: str, error: str, wait: float, attempt: int) -> None:
    """A delivery attempt failed and will be retried after ``wait`` seconds."""
    METRICS.retries.labels(sink).inc()
    event(logging.WARNING, "delivery failed, retrying", sink=sink, error=error,
          retry_in_secs=round(wait, 3), attempt=attempt)


def batch_rejected(sink: str, count: int, error: str) -> None:
    """Records were refused permanently (poison batch or per-line rejections)."""
    METRICS.rejected.labels(sink).inc(count)
    event(logging.ERROR, "records rejected", sink=sink, records=count, error=error)


def bytes_dropped(source: str, path: str, nbytes: int, reason: str, **fields: Any) -> None:
    """Input was given up unread (a rotated file held longer than ``rotate_wait_secs``)."""
    METRICS.dropped_bytes.labels(source, reason).inc(nbytes)
    event(logging.ERROR, "input given up unread", source=source, path=path, bytes=nbytes, reason=reason,
          **fields)


_TRUNCATED_LOG_EVERY_S = 10.0
_truncated_logged: dict[str, tuple[float, int]] = {}  # source → (when logged, cut lines since)


def line_truncated(source: str, where: str, offset: int | None, length: int | None, kept: int,
                   **fields: Any) -> None:
    """A line longer than its source's limit shipped as its first ``kept`` bytes, marked
    ``truncated`` (and its ``original_bytes`` when ``length`` is known); counted, and the bytes
    cut off counted as dropped. Logged at most once per 10 s per source, with how many lines
    were cut since the last log line: a stream of long lines must not flood the agent's log."""
    METRICS.lines_truncated.labels(source).inc()
    if length is not None:
        METRICS.dropped_bytes.labels(source, "line_too_long").inc(max(0, length - kept))
    now = time.monotonic()
    last, since = _truncated_logged.get(source, (None, 0))
    if last is not None and now - last < _TRUNCATED_LOG_EVERY_S:
        _truncated_logged[source] = (last, since + 1)
        return
    _truncated_logged[source] = (now, 0)
    event(logging.WARNING, "line longer than the limit shipped truncated", source=source, where=where,
          offset=offset, original_bytes=length, kept_bytes=kept, cut_since_last_log=since, **fields)


def alb_object_late(source: str, key: str, after: str) -> None:
    """An ALB object appeared after objects that sort after it were read (a late node, another
    load balancer): a high-water mark would have skipped it."""
    METRICS.alb_late.labels(source).inc()
    event(logging.INFO, "alb object discovered late", source=source, key=key, sorts_before=after)


def alb_object_failed(source: str, key: str, error: str) -> None:
    """An ALB object could not be listed or read; it is tried again on the next poll."""
    METRICS.alb_failed.labels(source).inc()
    event(logging.WARNING, "alb object could not be read; will retry", source=source, key=key, error=error)


def records_dropped(sink: str, count: int) -> None:
    """A full buffer with ``when_full: drop_newest`` dropped records."""
    METRICS.dropped.labels(sink).inc(count)
    event(logging.WARNING, "buffer full, records dropped", sink=sink, records=count)


def buffer_damage(sink: str, segment: str, offset: int, size: int, reason: str, copy: str, *,
                  already: bool) -> None:
    """Damaged bytes of a disk buffer were copied aside and are skipped (counted once, by the
    process that set them aside; found again after a restart, they are logged again)."""
    if not already:
        METRICS.buffer_corrupt_entries.labels(sink).inc()
        METRICS.buffer_corrupt_bytes.labels(sink).inc(size)
    event(logging.ERROR, "disk buffer damage skipped" + (" (already quarantined)" if already else ""),
          sink=sink, segment=segment, offset=offset, bytes=size, reason=reason, copy=copy)


def buffer_damage_not_kept(sink: str, segment: str, offset: int, size: int, error: str) -> None:
    """Damaged bytes could not be copied aside: delivery waits (retried) until they can be."""
    event(logging.ERROR, "disk buffer damage could NOT be copied to quarantine; delivery waits until "
          "it can", sink=sink, segment=segment, offset=offset, bytes=size, error=error)


def buffer_torn(sink: str, segment: str, offset: int, size: int, reason: str) -> None:
    """A torn tail (a write a crash cut short, never acknowledged) was cut off at start."""
    METRICS.buffer_torn_bytes.labels(sink).inc(size)
    event(logging.WARNING, "disk buffer: torn tail truncated (never acknowledged)", sink=sink,
          segment=segment, offset=offset, bytes=size, reason=reason)


def state_damaged(kind: str, path: str, damaged: list[str], used: str, consequence: str, *,
                  level: int = logging.ERROR) -> None:
    """A state file (or a copy of it) is damaged: which copy is used instead, and what it costs."""
    METRICS.state_damaged.labels(kind).inc()
    event(level, "state file damaged", kind=kind, path=path, damaged=damaged, using=used,
          consequence=consequence)


def files_tightened(root: str, changed: int, failed: list[str]) -> None:
    """Group and other permissions were taken off the agent's state files at start."""
    if failed:
        event(logging.WARNING, "could not make some state files private to the agent's user",
              root=root, paths=len(failed), first=failed[0])
    if changed:
        event(logging.WARNING, "made state files private to the agent's user (0600/0700; they were "
              "readable by others)", root=root, changed=changed)
