"""Ship batches to anything that speaks the Elasticsearch ``_bulk`` API (OpenSearch, logharbor's
own ``/_bulk``), for users moving from an ELK stack or feeding both during a migration.

Each record becomes a ``create`` action into ``index``. ``_bulk`` answers per record, so the
error classifier works per item: items refused with 429 or 5xx are sent again *alone* (the
accepted ones are not stored twice), items refused with another 4xx are permanent rejections
(logged, counted, dead-lettered). Whole-request failures follow the ``logharbor`` sink's rules.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson
from pydantic import Field, field_validator

from logharbor.agent.config import TLSConfig
from logharbor.agent.sinks.base import BufferedSink, PartialRetry, SinkConfig, TooLarge
from logharbor.agent.sinks.connections import KeepAlive
from logharbor.agent.sinks.logharbor import parse_retry_after
from logharbor.agent.types import Permanent, Retriable

__all__ = ["Config", "ElasticsearchSink"]


class Config(SinkConfig):
    """Options of the ``elasticsearch`` sink."""

    type: Literal["elasticsearch"]
    url: str
    index: str = "logs"
    api_key: str | None = None
    api_key_env: str | None = None
    username: str | None = None
    password_env: str | None = None
    compression: Literal["gzip", "none"] = "gzip"
    timeout_secs: float = Field(default=30.0, gt=0)
    tls: TLSConfig = TLSConfig()
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http:// or https:// URL with a host, got {value!r}")
        return value


class ElasticsearchSink(BufferedSink):
    """The ``elasticsearch`` sink."""

    def __init__(self, name: str, cfg: Config, data_dir: Path) -> None:
        super().__init__(name, cfg, data_dir)
        self.ecfg = cfg
        parts = urlsplit(cfg.url)
        self.http = KeepAlive(parts, default_port=9200, timeout=cfg.timeout_secs, tls=cfg.tls)
        self.path = parts.path.rstrip("/") + "/_bulk"
        self.action = orjson.dumps({"create": {"_index": cfg.index}}) + b"\n"
        self.headers = {"Content-Type": "application/x-ndjson", "User-Agent": "logharbor-agent"}
        key = cfg.api_key or (os.environ.get(cfg.api_key_env) if cfg.api_key_env else None)
        if key:
            self.headers["Authorization"] = f"ApiKey {key}"
        elif cfg.username:
            password = os.environ.get(cfg.password_env, "") if cfg.password_env else ""
            token = base64.b64encode(f"{cfg.username}:{password}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        self.headers.update(cfg.headers)
        if cfg.compression == "gzip":
            self.headers["Content-Encoding"] = "gzip"

    def _closed(self) -> None:
        self.http.close_all()

    def body(self, payload: bytes) -> bytes:
        """The ``_bulk`` body: one ``create`` action before every record (records never hold a
        raw newline: the encoder escapes them)."""
        bulk = self.action + payload[:-1].replace(b"\n", b"\n" + self.action) + b"\n"
        return gzip.compress(bulk, compresslevel=1, mtime=0) if self.ecfg.compression == "gzip" else bulk

    def send(self, payload: bytes, count: int) -> list[dict[str, Any]]:
        try:
            conn = self.http.get()
            conn.request("POST", self.path, body=self.body(payload), headers=self.headers)
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            self.http.drop()
            raise Retriable(f"{type(exc).__name__}: {exc}") from None
        status = resp.status
        detail = data[:300].decode("utf-8", "replace")
        if status in (429, 408, 401, 403) or status >= 500:
            raise Retriable(f"HTTP {status}: {detail}", parse_retry_after(resp.getheader("Retry-After")))
        if status == 413:
            raise TooLarge(f"HTTP 413: {detail}")
        if not 200 <= status < 300:
            raise Permanent(f"HTTP {status}: {detail}")
        self._metrics.bytes_sent.labels(self.name).inc(len(payload))
        try:
            answer = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise Retriable(f"HTTP {status}: the _bulk answer is not JSON: {detail}") from None
        if not answer.get("errors"):
            return []
        return self._items(payload, answer.get("items") or [])

    @staticmethod
    def _items(payload: bytes, items: list[Any]) -> list[dict[str, Any]]:
        lines = payload.split(b"\n")[:-1]
        again: list[bytes] = []
        rejected: list[dict[str, Any]] = []
        for k, (line, item) in enumerate(zip(lines, items, strict=False), start=1):
            result = next(iter(item.values()), {}) if isinstance(item, dict) else {}
            status = int(result.get("status", 500))
            if status < 300:
                continue
            if status in (429, 408) or status >= 500:
                again.append(line)
            else:
                rejected.append({"line": k, "error": str(result.get("error"))[:300]})
        if again:
            bad = [lines[r["line"] - 1] for r in rejected]
            raise PartialRetry(f"{len(again)} records refused with a retriable status",
                               b"\n".join(again) + b"\n", len(again),
                               rejected=b"".join(x + b"\n" for x in bad), rejected_count=len(bad),
                               rejected_error=rejected[0]["error"] if rejected else "")
        return rejected
