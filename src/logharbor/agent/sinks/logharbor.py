"""Ship batches to a logharbor server: ``POST /api/v1/logs``, NDJSON, zstd or gzip, API key, TLS.

The server answers 200 only once the records are fsync'd in its write-ahead log, so a 200 is the
acknowledgement the sources' checkpoints wait for. The error classifier follows the server's
contract: 429 and 5xx (and connection errors, 408) are retriable and may carry ``Retry-After``;
401/403 are retried too (the records are fine, the key is not: nothing is thrown away while an
operator fixes it); 413 means the batch is too large and is split; a 400/415 saying the
*compression* could not be decoded gets the same batch sent uncompressed (the records are fine);
any other 4xx is permanent; per-line rejections in a 200 answer are permanent for those lines.

Every POST carries ``Idempotency-Key`` (see ``sinks/base.py``): a batch resent after a lost answer,
a timeout or an agent restart that replays it from the disk buffer is stored once by a server that
still remembers the key (within its window; beyond it, at-least-once).

One persistent HTTP/1.1 connection (``http.client``) per sink: the body is built in one piece,
so there is nothing for a larger client to add but per-request overhead.
"""

from __future__ import annotations

import gzip
import logging
import threading
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson
import zstandard
from pydantic import Field

from logharbor.agent import telemetry
from logharbor.agent.sinks.base import BufferedSink, TooLarge, Unaccounted
from logharbor.agent.sinks.connections import HttpSinkConfig, KeepAlive, parse_retry_after
from logharbor.agent.types import Buffer, Permanent, Retriable
from logharbor.types import JsonObject

__all__ = ["Config", "LogharborSink"]


_ENCODING_ERRORS = frozenset(("bad_encoding", "unsupported_encoding"))


def _error_code(data: bytes) -> str:
    """The ``error.code`` of a logharbor error body, or ""."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError:
        return ""
    error = doc.get("error") if isinstance(doc, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else ""


class Config(HttpSinkConfig):
    """Options of the ``logharbor`` sink."""

    type: Literal["logharbor"]
    compression: Literal["zstd", "gzip", "none"] = "zstd"
    compression_level: int | None = Field(default=None, ge=1, le=19)


class LogharborSink(BufferedSink):
    """The ``logharbor`` sink."""

    def __init__(self, name: str, cfg: Config, data_dir: Path, *, buffer: Buffer | None = None) -> None:
        super().__init__(name, cfg, data_dir, buffer=buffer)
        self.lcfg = cfg
        parts = urlsplit(cfg.url)
        self.http = KeepAlive(parts, default_port=80, timeout=cfg.timeout_secs, tls=cfg.tls)
        path = parts.path if parts.path not in ("", "/") else "/api/v1/logs"
        self.path = path + (f"?{parts.query}" if parts.query else "")
        key = cfg.resolved_api_key()
        self.headers = {"Content-Type": "application/x-ndjson", "User-Agent": "logharbor-agent",
                        **cfg.headers}
        if key:
            self.headers["Authorization"] = f"Bearer {key}"
        if cfg.compression != "none":
            self.headers["Content-Encoding"] = cfg.compression
        self._level = cfg.compression_level or 1
        self._gzip_level = self._level if cfg.compression == "gzip" else 0
        self._local = threading.local()  # one zstd compressor per delivery thread

    def _closed(self) -> None:
        self.http.close_all()

    def _abort(self) -> None:
        self.http.abort_all()

    def encode(self, payload: bytes) -> bytes:
        """The request body for an NDJSON payload, compressed as configured."""
        if self.lcfg.compression == "zstd":
            # a ZstdCompressor is not thread-safe: one per delivery thread
            zstd = getattr(self._local, "zstd", None)
            if zstd is None:
                zstd = self._local.zstd = zstandard.ZstdCompressor(level=self._level)
            return zstd.compress(payload)
        if self._gzip_level:
            return gzip.compress(payload, compresslevel=self._gzip_level, mtime=0)
        return payload

    def send(self, payload: bytes, count: int, key: str, context: Any = None) -> list[JsonObject]:
        body = self.encode(payload)
        headers = {**self.headers, "Idempotency-Key": key}
        resp, data = self.http.post(self.path, body, headers)
        status = resp.status
        if status in (400, 415) and "Content-Encoding" in headers and _error_code(data) in _ENCODING_ERRORS:
            # the records are fine, their compressed form was not taken (a corrupt frame, a proxy
            # that re-encodes): the same batch, uncompressed, rather than refusing good records
            telemetry.event(logging.WARNING, "the receiver could not decode the compressed body; "
                            "sending this batch uncompressed", sink=self.name, status=status,
                            detail=data[:200].decode("utf-8", "replace"))
            headers.pop("Content-Encoding")
            body = payload
            resp, data = self.http.post(self.path, body, headers)
            status = resp.status
        if 200 <= status < 300:
            self._metrics.bytes_sent.labels(self.name).inc(len(body))
            try:
                answer = orjson.loads(data) if data else {}
            except orjson.JSONDecodeError:
                answer = {}
            rejected = answer.get("rejected") if isinstance(answer, dict) else None
            out = [r for r in rejected if isinstance(r, dict)] if isinstance(rejected, list) else []
            accepted = answer.get("accepted") if isinstance(answer, dict) else None
            if isinstance(accepted, int) and accepted + len(out) != count:
                telemetry.event(logging.ERROR, "receiver did not account for every record", sink=self.name,
                                sent=count, accepted=accepted, rejected=len(out))
                if accepted + len(out) < count:
                    # some records reached nobody (a payload decoded short): send the batch again,
                    # under a new key; at-least-once prefers duplicates of the accepted ones to
                    # losing the rest
                    raise Unaccounted(f"receiver accounted for {accepted + len(out)} of {count} records")
            return out
        detail = data[:300].decode("utf-8", "replace")
        if status == 429 or status >= 500 or status == 408:
            raise Retriable(f"HTTP {status}: {detail}", parse_retry_after(resp.getheader("Retry-After")))
        if status in (401, 403):
            # the records are fine, the credentials are not: keep them until the key is fixed
            raise Retriable(f"HTTP {status} (check the API key and its role): {detail}")
        if status == 413:
            raise TooLarge(f"HTTP 413: {detail}")
        raise Permanent(f"HTTP {status}: {detail}")
