"""AWS ALB access logs as the load balancer delivers them: gzip'd objects in S3 or in a folder.

ALB writes one object per node every five minutes under
``AWSLogs/<account>/elasticloadbalancing/<region>/yyyy/mm/dd/…log.gz``; keys sort by time. The
source lists objects in key order (S3: ListObjectsV2 with ``StartAfter``; a folder: the same tree
on disk), reads each new one whole (GetObject, gunzip) and emits its lines with the ``alb``
parser. An object counts as done only when every chunk of it was acknowledged by every sink; the
done set is kept in a checkpoint file (atomic write) as a *watermark* (every key up to it is done)
plus the done keys above it, so a re-listed or re-delivered object is never read twice and the
checkpoint stays small however long the agent runs.
"""

from __future__ import annotations

import gzip
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import Field, model_validator

from logharbor.agent import telemetry
from logharbor.agent.sources.common import SourceConfig
from logharbor.agent.types import Ack, Chunk
from logharbor.durable import write_atomic

__all__ = ["AlbSource", "Config"]

_CHUNK_LINES = 5000


class Config(SourceConfig):
    """Options of the ``alb`` source: a ``path`` (folder) or an S3 ``bucket``."""

    type: Literal["alb"]
    parser: str | dict[str, Any] | None = "alb"
    path: Path | None = Field(None, description="folder holding the AWSLogs/ tree")
    bucket: str | None = Field(None, description="S3 bucket the load balancer writes to")
    prefix: str = Field("", description="key prefix, e.g. 'AWSLogs/123456789012/'")
    endpoint_url: str | None = Field(None, description="S3 endpoint (default: AWS for the region)")
    region: str | None = None
    poll_interval_s: float = Field(10.0, gt=0)

    @model_validator(mode="after")
    def _one_place(self) -> Config:
        if (self.path is None) == (self.bucket is None):
            raise ValueError("give exactly one of 'path' (a folder) or 'bucket' (S3)")
        return self


class _Objects:
    """Where objects come from: ``list_after(key)`` in key order and ``read(key)`` as bytes."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._s3: Any = None
        if cfg.bucket is not None:
            import boto3

            self._s3 = boto3.client("s3", endpoint_url=cfg.endpoint_url, region_name=cfg.region)

    def list_after(self, after: str) -> Iterator[str]:
        if self._s3 is not None:
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.cfg.bucket, Prefix=self.cfg.prefix, StartAfter=after or self.cfg.prefix)
            for page in pages:
                for obj in page.get("Contents", []):
                    if obj["Key"].endswith(".log.gz") or obj["Key"].endswith(".log"):
                        yield obj["Key"]
            return
        root = self.cfg.path
        assert root is not None
        keys = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.log*")
                      if p.is_file() and not p.name.startswith(".") and p.name.endswith((".log.gz", ".log")))
        yield from (k for k in keys if k > after and k.startswith(self.cfg.prefix))

    def read(self, key: str) -> bytes:
        if self._s3 is not None:
            data = self._s3.get_object(Bucket=self.cfg.bucket, Key=key)["Body"].read()
        else:
            assert self.cfg.path is not None
            data = (self.cfg.path / key).read_bytes()
        return gzip.decompress(data) if key.endswith(".gz") else data


class AlbSource:
    """The ``alb`` source: each object read once, done when all its lines are delivered."""

    def __init__(self, name: str, cfg: Config, data_dir: Path, sinks: int) -> None:
        self.name = name
        self.cfg = cfg
        self.sinks = sinks
        self.objects = _Objects(cfg)
        self.checkpoint_path = data_dir / f"{name}.alb.json"
        self._lock = threading.Lock()
        self._outstanding: dict[str, int] = {}  # key → chunks not yet acknowledged
        self._started: list[str] = []  # keys handed on, in key order
        self.watermark, self.done = self._load()
        self.meta = {"source": "alb", "host": socket.gethostname(), **cfg.fields}

    # -- checkpoint --------------------------------------------------------------------------

    def _load(self) -> tuple[str, set[str]]:
        try:
            state = orjson.loads(self.checkpoint_path.read_bytes())
        except FileNotFoundError:
            return "", set()
        return state.get("watermark", ""), set(state.get("done", []))

    def _save(self) -> None:
        with self._lock:
            body = orjson.dumps({"version": 1, "watermark": self.watermark, "done": sorted(self.done)})
        self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.checkpoint_path, body)

    def _finished(self, key: str) -> None:
        """Every chunk of ``key`` is delivered: move the watermark over what is contiguous."""
        with self._lock:
            self.done.add(key)
            del self._outstanding[key]
            while self._started and self._started[0] in self.done:
                self.watermark = self._started.pop(0)
                self.done.discard(self.watermark)
        self._save()
        telemetry.event(logging.INFO, "alb object delivered", source=self.name, key=key)

    # -- reading -----------------------------------------------------------------------------

    def pending(self) -> int:
        with self._lock:
            return sum(self._outstanding.values())

    def close(self) -> None:
        self._save()

    def run(self, emit: Callable[[Chunk], None], stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self._poll(emit, stop)
            except Exception as exc:  # a listing error must not end the source: log, wait, retry
                telemetry.event(logging.WARNING, "alb listing failed; will retry", source=self.name,
                                error=str(exc)[:300])
            stop.wait(self.cfg.poll_interval_s)

    def _poll(self, emit: Callable[[Chunk], None], stop: threading.Event) -> None:
        with self._lock:
            after = self._started[-1] if self._started else self.watermark
            skip = set(self.done) | set(self._outstanding)
        for key in self.objects.list_after(after):
            if stop.is_set():
                return
            if key in skip:
                continue
            data = self.objects.read(key)
            lines = [ln for ln in data.decode("utf-8", "replace").split("\n") if ln.strip()]
            chunks = [lines[i:i + _CHUNK_LINES] for i in range(0, len(lines), _CHUNK_LINES)] or [[]]
            with self._lock:
                self._started.append(key)
                self._outstanding[key] = len(chunks)
            telemetry.METRICS.lines_read.labels(self.name).inc(len(lines))
            telemetry.METRICS.bytes_read.labels(self.name).inc(len(data))
            if not lines:
                self._finished(key)
                continue
            for part in chunks:
                emit(Chunk(part, Ack(self.sinks, self._chunk_done(key)), sum(len(x) + 1 for x in part),
                           {**self.meta, "object": key}, None, time.time_ns()))

    def _chunk_done(self, key: str) -> Callable[[Ack], None]:
        def done(_ack: Ack) -> None:
            with self._lock:
                self._outstanding[key] -= 1
                last = self._outstanding[key] == 0
            if last:
                self._finished(key)
        return done
