"""Ship batches to anything that speaks the Elasticsearch ``_bulk`` API (Elasticsearch, OpenSearch,
logharbor's own ``/_bulk``), for users moving from an ELK stack or feeding both during a migration.

Each record becomes a ``create`` action (append-only, what data streams require) into ``index``,
whose name may hold a strftime pattern (``logs-%Y.%m.%d``) filled from the record's own
timestamp in UTC, so a late record lands in the index of its day, not of the day it was sent.

``_bulk`` answers per item, so the error classifier works per item:

- ``2xx``, and ``409`` (``version_conflict_engine_exception``: for ``create`` it means a document
  with that id is already there — an earlier attempt got through) count as delivered;
- ``429``, ``408``, ``5xx`` and ``es_rejected_execution_exception`` are sent again *alone*, with
  the sink's backoff (the accepted items are never stored twice);
- any other item error (``400 mapper_parsing_exception``…) is permanent: the record goes to the
  dead letter with its status and reason, and is counted.

Each ``create`` carries a deterministic ``_id`` (``document_ids: batch``, the default): a hash of the
batch's idempotency key (see ``sinks/base.py``) and the record's place in the batch. A batch sent
again — after a lost answer, a timeout, or a restart that replays it from a disk buffer — gives
every record the ``_id`` it had, so Elasticsearch (and logharbor's ``/_bulk`` within its window)
answers ``409`` for what it already has, which counts as delivered: stored once, not twice. A
record resent alone after a ``429`` keeps its ``_id``. ``document_ids: auto`` lets the cluster pick
ids (a little faster to index; a resent batch is then stored twice).

Whole-request answers follow the ``logharbor`` sink's rules: 429/408/5xx (and 401/403: the
records are fine, the credentials are not) are retried honouring ``Retry-After``, 413 splits the
batch, any other 4xx is permanent for the batch.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import os
import time
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import orjson
from pydantic import field_validator, model_validator

from logharbor import exactjson
from logharbor.agent.sinks.base import BufferedSink, PartialRetry, TooLarge
from logharbor.agent.sinks.connections import HttpSinkConfig, KeepAlive, parse_retry_after
from logharbor.agent.types import Buffer, Permanent, Retriable
from logharbor.record import RecordError, parse_timestamp
from logharbor.types import JsonObject

__all__ = ["Config", "ElasticsearchSink", "classify_item"]

_TIME_KEYS = ("@timestamp", "timestamp", "time", "ts", "timeMillis")
_RETRY_TYPES = frozenset(("es_rejected_execution_exception", "circuit_breaking_exception"))


class Config(HttpSinkConfig):
    """Options of the ``elasticsearch`` sink."""

    type: Literal["elasticsearch"]
    #: index or data stream; strftime fields (``%Y``, ``%m``, ``%d``, ``%H``) are taken from each
    #: record's timestamp in UTC
    index: str = "logs"
    username: str | None = None
    password: str | None = None
    password_env: str | None = None
    #: set this field (RFC 3339, UTC) on records that lack it, from their own timestamp; data
    #: streams require ``@timestamp``; ``null`` sends records as they are
    timestamp_field: str | None = "@timestamp"
    compression: Literal["gzip", "none"] = "gzip"
    #: ``batch``: each record's ``_id`` is derived from its batch's idempotency key and its place in
    #: it, so a resent batch answers 409 (delivered) instead of being stored twice; ``auto``: none
    document_ids: Literal["batch", "auto"] = "batch"

    @field_validator("index")
    @classmethod
    def _index(cls, value: str) -> str:
        try:
            sample = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC).strftime(value)
        except ValueError as exc:
            raise ValueError(f"not a valid strftime pattern: {exc}") from None
        bad = set(sample) & set('\\/*?"<>| ,#:')
        if not sample or bad or sample[0] in "_-+" or sample != sample.lower():
            raise ValueError(f"{value!r} gives {sample!r}, not a valid index name (lowercase, no "
                             "\\ / * ? \" < > | space , # :, not starting with _ - +)")
        return value

    @model_validator(mode="after")
    def _auth(self) -> Config:
        if (self.password or self.password_env) and not self.username:
            raise ValueError("password/password_env given without username")
        if self.password and self.password_env:
            raise ValueError("give password or password_env, not both")
        if (self.api_key or self.api_key_env) and self.username:
            raise ValueError("give an API key or a username, not both")
        return self


def classify_item(item: Any) -> tuple[str, int, str]:
    """One ``_bulk`` answer item as (``ok`` | ``retry`` | ``reject``, status, reason)."""
    result = next(iter(item.values()), {}) if isinstance(item, dict) and item else {}
    if not isinstance(result, dict):
        return "retry", 500, f"unreadable item {item!r}"[:300]
    try:
        status = int(result.get("status", 500))
    except (TypeError, ValueError):
        status = 500
    error = result.get("error")
    kind = error.get("type", "") if isinstance(error, dict) else str(error or "")
    reason = error.get("reason", "") if isinstance(error, dict) else ""
    text = f"{status} {kind}: {reason}".strip()[:300]
    if status < 300 or status == 409:  # 409 on create: the document is there already
        return "ok", status, text
    if status in (429, 408) or status >= 500 or kind in _RETRY_TYPES:
        return "retry", status, text
    return "reject", status, text


class ElasticsearchSink(BufferedSink):
    """The ``elasticsearch`` sink."""

    def __init__(self, name: str, cfg: Config, data_dir: Path, *, buffer: Buffer | None = None) -> None:
        super().__init__(name, cfg, data_dir, buffer=buffer)
        self.ecfg = cfg
        parts = urlsplit(cfg.url)
        self.http = KeepAlive(parts, default_port=9200, timeout=cfg.timeout_secs, tls=cfg.tls)
        self.path = parts.path.rstrip("/") + "/_bulk"
        self.dated = "%" in cfg.index
        self.action = orjson.dumps({"create": {"_index": cfg.index}}) + b"\n"
        self._actions: dict[int, bytes] = {}  # index name per UTC second, for dated indexes
        self.headers = {"Content-Type": "application/x-ndjson", "User-Agent": "logharbor-agent"}
        key = cfg.resolved_api_key()
        if key:
            self.headers["Authorization"] = f"ApiKey {key}"
        elif cfg.username:
            password = cfg.password or (os.environ.get(cfg.password_env, "") if cfg.password_env else "")
            token = base64.b64encode(f"{cfg.username}:{password}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        self.headers.update(cfg.headers)
        if cfg.compression == "gzip":
            self.headers["Content-Encoding"] = "gzip"

    def _closed(self) -> None:
        self.http.close_all()

    def _abort(self) -> None:
        self.http.abort_all()

    # -- the request body -------------------------------------------------------------------------

    def _action_for(self, ns: int) -> bytes:
        second = ns // 1_000_000_000
        found = self._actions.get(second)
        if found is None:
            if len(self._actions) > 4096:
                self._actions.clear()
            when = dt.datetime.fromtimestamp(second, tz=dt.UTC)
            found = orjson.dumps({"create": {"_index": when.strftime(self.ecfg.index)}}) + b"\n"
            self._actions[second] = found
        return found

    def _pair(self, line: bytes) -> bytes:
        """The action and source lines of one record (per-record work: dated index, @timestamp)."""
        try:
            doc = exactjson.loads(line)  # an integer beyond 64 bits stays exact (orjson: a float)
        except ValueError:
            return self.action + line + b"\n"  # the receiver will say what is wrong with it
        if not isinstance(doc, dict):
            return self.action + line + b"\n"
        ns = None
        for key in _TIME_KEYS:
            if key in doc:
                try:
                    ns = parse_timestamp(doc[key])
                    break
                except RecordError:
                    continue
        field = self.ecfg.timestamp_field
        if field and field not in doc and ns is not None:
            stamp = dt.datetime.fromtimestamp(ns // 1_000_000_000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
            doc[field] = f"{stamp}.{ns % 1_000_000_000:09d}Z"
            line = exactjson.dumps(doc)
        if not self.dated:
            return self.action + line + b"\n"
        return self._action_for(ns if ns is not None else time.time_ns()) + line + b"\n"

    def bulk(self, payload: bytes, ids: list[str] | None = None) -> bytes:
        """The ``_bulk`` body (uncompressed): one ``create`` action before every record, with
        ``ids[k]`` as the ``_id`` of the k-th record when given."""
        if ids is None and not self.dated and not self.ecfg.timestamp_field:
            # records never hold a raw newline (the encoder escapes them): one splice does it
            return self.action + payload[:-1].replace(b"\n", b"\n" + self.action) + b"\n"
        pairs = [self._pair(line) for line in payload.split(b"\n") if line]
        if ids is None:
            return b"".join(pairs)
        out = []
        for pair, doc_id in zip(pairs, ids, strict=True):
            action, _, source = pair.partition(b"\n")
            out.append(action[:-2] + b',"_id":' + orjson.dumps(doc_id) + b"}}\n" + source)
        return b"".join(out)

    @staticmethod
    def document_ids(key: str, count: int) -> list[str]:
        """The ``_id`` of each record of the batch ``key``: 20 characters, the same on every attempt."""
        out = []
        for k in range(count):
            digest = hashlib.blake2b(f"{key}/{k}".encode(), digest_size=15).digest()
            out.append(base64.urlsafe_b64encode(digest).decode())
        return out

    def body(self, payload: bytes, ids: list[str] | None = None) -> bytes:
        """The request body, compressed as configured."""
        bulk = self.bulk(payload, ids)
        return gzip.compress(bulk, compresslevel=1, mtime=0) if self.ecfg.compression == "gzip" else bulk

    # -- one request ------------------------------------------------------------------------------

    def send(self, payload: bytes, count: int, key: str, context: Any = None) -> list[JsonObject]:
        ids: list[str] | None = None
        if self.ecfg.document_ids == "batch":
            # a partial resend carries the ids its records had in the first attempt
            ids = context if context is not None else self.document_ids(key, payload.count(b"\n"))
        body = self.body(payload, ids)
        resp, data = self.http.post(self.path, body, self.headers)
        status = resp.status
        detail = data[:300].decode("utf-8", "replace")
        if status in (429, 408) or status >= 500:
            raise Retriable(f"HTTP {status}: {detail}", parse_retry_after(resp.getheader("Retry-After")))
        if status in (401, 403):
            # the records are fine, the credentials are not: keep them until they are fixed
            raise Retriable(f"HTTP {status} (check the credentials and their privileges): {detail}")
        if status == 413:
            raise TooLarge(f"HTTP 413: {detail}")
        if not 200 <= status < 300:
            raise Permanent(f"HTTP {status}: {detail}")
        self._metrics.bytes_sent.labels(self.name).inc(len(body))
        try:
            answer = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise Retriable(f"HTTP {status}: the _bulk answer is not JSON: {detail}") from None
        if not isinstance(answer, dict):
            raise Retriable(f"HTTP {status}: the _bulk answer is not an object: {detail}")
        if not answer.get("errors"):
            return []
        return self._items(payload, answer.get("items") or [], count, ids)

    @staticmethod
    def _items(payload: bytes, items: list[Any], count: int,
               ids: list[str] | None = None) -> list[JsonObject]:
        """Sort the answer's items: raise :class:`PartialRetry` with the ones to send again, or
        return the permanent refusals (``line`` is 1-based in ``payload``)."""
        lines = payload.split(b"\n")[:-1]
        if len(items) != len(lines):
            # the answer does not pair with what was sent: nothing can be known, send all again
            raise Retriable(f"_bulk answered {len(items)} items for {len(lines)} records")
        again: list[bytes] = []
        again_ids: list[str] = []
        rejected: list[JsonObject] = []
        for k, (line, item) in enumerate(zip(lines, items, strict=True), start=1):
            verdict, status, reason = classify_item(item)
            if verdict == "retry":
                again.append(line)
                if ids is not None:
                    again_ids.append(ids[k - 1])
            elif verdict == "reject":
                rejected.append({"line": k, "status": status, "error": reason})
        if again:
            bad = [lines[r["line"] - 1] for r in rejected]
            raise PartialRetry(f"{len(again)} of {count} records refused with a retriable status",
                               b"\n".join(again) + b"\n", len(again),
                               rejected=b"".join(x + b"\n" for x in bad), rejected_count=len(bad),
                               rejected_error=rejected[0]["error"] if rejected else "",
                               rejected_lines=rejected, context=again_ids if ids is not None else None)
        return rejected
