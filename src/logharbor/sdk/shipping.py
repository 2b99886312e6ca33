"""Direct shipping to a logharbor server, for services with no agent beside them.

Why its own thread and buffer: the network is slow and sometimes gone; the sdk's worker hands
lines over and moves on. The shipper batches them (by count, bytes or age), compresses the
NDJSON body (zstd, or gzip), posts it to ``/api/v1/logs`` with the API key, and retries
transient failures (connection errors, 429, 5xx) with exponential backoff and jitter, honouring
``Retry-After``. A batch the server refuses for good (400, 401, 403) is dropped and counted, and
a 413 splits the batch in two; a 400/415 saying the *compression* could not be decoded gets the
same batch sent uncompressed (the lines are fine). The buffer is bounded: when the server is
away for long, the oldest lines go first and are counted.

Every POST carries an ``Idempotency-Key``: ``sdk-<process id>-<batch number>``, the same on every
retry of one batch (a retry after a lost answer is stored once by the server, within its window)
and new for every new batch (halves of a batch split on 413 are new batches). The process id is a
random id drawn at start and again in a forked child, so two processes never share keys.
"""

from __future__ import annotations

import gzip
import itertools
import logging
import os
import random
import secrets
import sys
import threading
import time
from collections import deque
from email.utils import parsedate_to_datetime

import httpx
import orjson

from logharbor.types import JsonObject

__all__ = ["DeliveryError", "HttpShipper", "PayloadTooLarge", "PermanentError", "RetriableError"]


class DeliveryError(Exception):
    """A batch could not be delivered."""


class RetriableError(DeliveryError):
    """Worth trying again later (network, 429, 5xx); ``retry_after`` is the server's hint."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    """Sending the same batch again cannot succeed (bad key, bad request)."""


class PayloadTooLarge(PermanentError):
    """413: this batch is too large as a whole; its halves may pass."""


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


_ENCODING_ERRORS = frozenset(("bad_encoding", "unsupported_encoding"))


def _error_code(response: httpx.Response) -> str:
    """The ``error.code`` of a logharbor error answer, or ""."""
    try:
        doc = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return ""
    error = doc.get("error") if isinstance(doc, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else ""


_THREAD_NAME = "logharbor-ship"
_MAX_RETRY_AFTER = 300.0  # a server asking for more is misconfigured; try again after 5 min


class _NotFromShipper(logging.Filter):
    """httpx logs every request at INFO; the shipper's own requests must not become log
    records that are shipped, which would log again, forever."""

    def filter(self, record: logging.LogRecord) -> bool:
        return threading.current_thread().name != _THREAD_NAME


def _quiet_http_clients() -> None:
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NotFromShipper) for f in logger.filters):
            logger.addFilter(_NotFromShipper())


class HttpShipper:
    """An :class:`~logharbor.sdk.handlers.Output` that posts NDJSON batches to the server."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        compression: str = "zstd",
        batch_lines: int = 1000,
        batch_bytes: int = 1 << 20,
        flush_interval: float = 1.0,
        buffer_lines: int = 100_000,
        max_backoff: float = 30.0,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if compression not in ("zstd", "gzip", "none"):
            raise ValueError(f"ship compression must be zstd, gzip or none, got {compression!r}")
        base = url.rstrip("/")
        self.url = base if base.endswith("/api/v1/logs") else base + "/api/v1/logs"
        self.api_key = api_key
        self.compression = compression
        self.batch_lines = batch_lines
        self.batch_bytes = batch_bytes
        self.flush_interval = flush_interval
        self.buffer_lines = buffer_lines
        self.max_backoff = max_backoff
        self._timeout = timeout
        self._transport = transport
        self.sent = 0
        self.accepted = 0
        self.rejected = 0
        self.dropped = 0
        self.retries = 0
        self.last_error: str | None = None
        self.last_retry_delay = 0.0
        _quiet_http_clients()
        self._start()
        os.register_at_fork(after_in_child=self._start)

    def _start(self) -> None:
        self._key_prefix = f"sdk-{secrets.token_hex(8)}-"
        self._batch_seq = itertools.count()
        self._buffer: deque[bytes] = deque()
        self._lock = threading.Condition()
        self._flush_requested = False
        self._inflight = False
        self._running = True
        self._client = httpx.Client(timeout=self._timeout, transport=self._transport)
        self._thread = threading.Thread(target=self._run, name=_THREAD_NAME, daemon=True)
        self._thread.start()

    # -- Output interface (called by the sdk worker) ----------------------------------------------

    def write(self, lines: list[bytes]) -> None:
        """Take a batch of lines; the oldest are dropped (and counted) beyond ``buffer_lines``."""
        with self._lock:
            self._buffer.extend(lines)
            over = len(self._buffer) - self.buffer_lines
            for _ in range(max(0, over)):
                self._buffer.popleft()
                self.dropped += 1
            if len(self._buffer) >= self.batch_lines:
                self._lock.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Send everything buffered now; False if it is still pending after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._flush_requested = True
            self._lock.notify_all()
            while (self._buffer or self._inflight) and self._thread.is_alive():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.05))
            return not self._buffer

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is buffered (waiting at most ``timeout``), then stop the thread."""
        self.flush(timeout)
        with self._lock:
            self._running = False
            self._lock.notify_all()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._client.close()
        if self._buffer:
            print(f"logharbor sdk: {len(self._buffer)} log lines not shipped to {self.url} "
                  f"at exit ({self.last_error or 'timed out'})", file=sys.stderr)

    def stats(self) -> JsonObject:
        """Delivery counters: lines sent, accepted and rejected by the server, dropped, retries."""
        return {"sent": self.sent, "accepted": self.accepted, "rejected": self.rejected,
                "dropped": self.dropped, "retries": self.retries, "buffered": len(self._buffer),
                "last_error": self.last_error, "last_retry_delay": self.last_retry_delay}

    # -- the thread ---------------------------------------------------------------------------------

    def _take_batch(self) -> list[bytes]:
        batch: list[bytes] = []
        size = 0
        while self._buffer and len(batch) < self.batch_lines and size < self.batch_bytes:
            line = self._buffer.popleft()
            batch.append(line)
            size += len(line)
        return batch

    def _run(self) -> None:
        oldest = time.monotonic()
        while True:
            with self._lock:
                while self._running and not self._flush_requested and len(self._buffer) < self.batch_lines:
                    if self._buffer and time.monotonic() - oldest >= self.flush_interval:
                        break
                    self._lock.wait(self.flush_interval / 4 if self._buffer else self.flush_interval)
                    if not self._buffer:
                        oldest = time.monotonic()
                if not self._buffer:
                    self._flush_requested = False
                    self._lock.notify_all()
                    if not self._running:
                        return
                    continue
                batch = self._take_batch()
                self._inflight = True
            finished = True
            try:
                finished = self._deliver(batch)
            finally:
                with self._lock:
                    self._inflight = False
                    oldest = time.monotonic()
                    self._lock.notify_all()
            if not finished and not self._running:
                return  # shutting down with the server away: close() reports what is left

    def _deliver(self, batch: list[bytes]) -> bool:
        """Send one batch until it is accepted or refused for good (True), or until shutdown
        interrupts a retry (False: the batch is back at the head of the buffer)."""
        attempt = 0
        key = self._key_prefix + str(next(self._batch_seq))  # the same on every retry of this batch
        while True:
            try:
                self._post(batch, key)
                return True
            except PayloadTooLarge as exc:
                if len(batch) > 1:
                    half = len(batch) // 2
                    if not self._deliver(batch[:half]):
                        self._buffer.extendleft(reversed(batch[half:]))
                        return False
                    return self._deliver(batch[half:])
                self._drop(batch, exc)
                return True
            except PermanentError as exc:
                self._drop(batch, exc)
                return True
            except RetriableError as exc:
                self.last_error = str(exc)
                attempt += 1
                self.retries += 1
                delay = min(self.max_backoff, 0.2 * 2 ** min(attempt, 10)) * random.uniform(0.5, 1.0)  # noqa: S311
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, _MAX_RETRY_AFTER))
                self.last_retry_delay = delay
                deadline = time.monotonic() + delay
                with self._lock:
                    while self._running and time.monotonic() < deadline:
                        self._lock.wait(deadline - time.monotonic())
                    if not self._running and time.monotonic() < deadline:
                        # shutting down: put the batch back so close() reports it as unsent
                        self._buffer.extendleft(reversed(batch))
                        return False

    def _drop(self, batch: list[bytes], exc: Exception) -> None:
        self.last_error = str(exc)
        self.dropped += len(batch)
        print(f"logharbor sdk: dropped {len(batch)} lines: {exc}", file=sys.stderr)

    def _encode(self, batch: list[bytes], key: str) -> tuple[bytes, dict[str, str]]:
        body = b"".join(batch)
        headers = {"Content-Type": "application/x-ndjson", "Idempotency-Key": key}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if self.compression == "zstd":
            import zstandard

            body = zstandard.ZstdCompressor(level=3).compress(body)
            headers["Content-Encoding"] = "zstd"
        elif self.compression == "gzip":
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        return body, headers

    def _send(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        try:
            return self._client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise RetriableError(f"{type(exc).__name__}: {exc}") from exc
        except RuntimeError as exc:  # the client was closed under us: shutting down
            raise PermanentError(f"client closed: {exc}") from exc

    def _post(self, batch: list[bytes], key: str) -> None:
        body, headers = self._encode(batch, key)
        response = self._send(body, headers)
        status = response.status_code
        refused = status in (400, 415) and _error_code(response) in _ENCODING_ERRORS
        if refused and "Content-Encoding" in headers:
            # the lines are fine, their compressed form was not taken: the same batch, uncompressed
            headers.pop("Content-Encoding")
            response = self._send(b"".join(batch), headers)
            status = response.status_code
        if status == 429 or status >= 500 or status == 408:
            raise RetriableError(f"HTTP {status} from {self.url}",
                                 _retry_after(response.headers.get("Retry-After")))
        if status == 413:
            raise PayloadTooLarge(f"HTTP 413 from {self.url}: {response.text[:200]}")
        if status >= 400:
            raise PermanentError(f"HTTP {status} from {self.url}: {response.text[:200]}")
        self.sent += len(batch)
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            answer = {}
        accepted = answer.get("accepted") if isinstance(answer, dict) else None
        rejected = answer.get("rejected") if isinstance(answer, dict) else None
        self.accepted += accepted if isinstance(accepted, int) else len(batch)
        if rejected:
            self.rejected += len(rejected)
            first = rejected[0]
            print(f"logharbor sdk: server rejected {len(rejected)} of {len(batch)} lines; first: {first}",
                  file=sys.stderr)
