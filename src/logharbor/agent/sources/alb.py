"""AWS ALB access logs as the load balancer delivers them: gzip'd objects in S3 or in a folder.

Each object is read once, whole, however late it arrives and however its key sorts. Every
``poll_interval_s`` the source lists a window (``lookback_hours`` of date folders of the AWS key
layout, see ``alb_listing.py``) and reads every log object it has not read yet, oldest first.
What was read is a *set* — key, version (ETag, or size in a folder), date folder — remembered in a
checkpoint file (a checked state document: ``statefile.py``) only once every record of the object
was acknowledged by every sink, and pruned when its date folder leaves the window (objects
outside the layout: when they are no longer listed). No high-water mark: an object of another
node for an older slot, of a second load balancer under the same prefix, or any object sorting
below what was read, is still read; such an object is logged and counted as *late*.

An object is read in chunks of :data:`CHUNK_LINES` lines; the checkpoint also records how many
leading chunks of an object in flight were acknowledged, so a restart (or ``kill -9``) in the
middle of a large object goes on after them instead of sending them twice. An object whose key
reappears with another version (overwritten) is read again, and logged.

Objects arriving more than ``lookback_hours`` after their date folder's day are outside the window
and not read: raise ``lookback_hours`` if deliveries can be that late (each poll lists one folder
per day of the window and per region).
"""

from __future__ import annotations

import gzip
import logging
import socket
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from logharbor.agent import statefile, telemetry
from logharbor.agent.sources.alb_listing import (
    FolderLister,
    Lister,
    ObjectInfo,
    S3Error,
    S3Lister,
    day_of,
    find_roots,
    scan,
    window_days,
)
from logharbor.agent.sources.common import SourceConfig
from logharbor.agent.types import Ack, Chunk
from logharbor.types import JsonObject

__all__ = ["CHUNK_LINES", "AlbSource", "Config"]

CHUNK_LINES = 5000
#: the tree is walked for roots and objects outside the layout at most this often
_WALK_SECS = 60.0
_FORMAT = 2
#: version 1 kept a watermark (taken over once); a newer release's read-set is refused, not replaced
_VERSIONS = statefile.Versions("ALB read-set checkpoint", (1, _FORMAT))


class Config(SourceConfig):
    """Options of the ``alb`` source: a ``path`` (folder) or an S3 ``bucket``."""

    type: Literal["alb"]
    parser: str | JsonObject | None = "alb"
    path: Path | None = Field(None, description="folder holding the AWSLogs/ tree")
    bucket: str | None = Field(None, description="S3 bucket the load balancer writes to")
    prefix: str = Field("", description="key prefix, e.g. 'AWSLogs/123456789012/'")
    endpoint_url: str | None = Field(None, description="S3 endpoint (default: AWS for the region)")
    region: str | None = None
    poll_interval_s: float = Field(10.0, gt=0)
    lookback_hours: float = Field(24.0, gt=0, le=24 * 366,
                                  description="how far back date folders are listed again, each poll")

    @model_validator(mode="after")
    def _one_place(self) -> Config:
        if (self.path is None) == (self.bucket is None):
            raise ValueError("give exactly one of 'path' (a folder) or 'bucket' (S3)")
        return self


@dataclass
class _Reading:
    """An object in flight: which of its chunks every sink acknowledged."""

    info: ObjectInfo
    acked: list[bool] = field(default_factory=list)
    skipped: int = 0  # leading chunks acknowledged before a restart, not sent again

    def leading(self) -> int:
        n = 0
        while n < len(self.acked) and self.acked[n]:
            n += 1
        return self.skipped + n


def _valid(state: JsonObject) -> None:
    if not isinstance(state.get("objects", {}), dict) or not isinstance(state.get("partial", {}), dict):
        raise ValueError("'objects' or 'partial' is not a mapping")


def decompress(key: str, data: bytes) -> bytes:
    """An object's text: every gzip member of it (``cat a.gz b.gz`` is one valid gzip file)."""
    if not key.endswith(".gz"):
        return data
    return gzip.decompress(data)  # reads member after member to the end; a torn one raises


class AlbSource:
    """The ``alb`` source (see the module docstring)."""

    def __init__(self, name: str, cfg: Config, data_dir: Path, sinks: int) -> None:
        self.name = name
        self.cfg = cfg
        self.sinks = sinks
        self.lister: Lister = (S3Lister(cfg.bucket, cfg.endpoint_url, cfg.region) if cfg.bucket is not None
                               else FolderLister(cfg.path or Path(".")))
        self.checkpoint_path = data_dir / f"{name}.alb.json"
        self._lock = threading.Lock()
        #: objects read and delivered: key → [version, date folder (ISO) or "" outside the layout]
        self.done: dict[str, list[str]] = {}
        #: objects in flight at the last save: key → [version, leading chunks acknowledged]
        self.partial: dict[str, list[Any]] = {}
        self._reading: dict[str, _Reading] = {}
        self._old_mark: tuple[str, set[str]] | None = None  # a version-1 checkpoint, taken over once
        self._roots: list[str] = []
        self._loose: list[ObjectInfo] = []
        self._next_walk = 0.0
        self._load()
        self.meta = {"source": "alb", "host": socket.gethostname(), **cfg.fields}
        m = telemetry.METRICS
        self._read_objects, self._known = m.alb_objects.labels(name), m.alb_known.labels(name)

    # -- checkpoint --------------------------------------------------------------------------

    def _load(self) -> None:
        loaded = statefile.read(self.checkpoint_path, _valid, _VERSIONS)
        statefile.report("alb_read_set", loaded, "no sound copy: every object in the window "
                         f"({self.cfg.lookback_hours:g} h) is read again and may be stored twice")
        state = loaded.doc
        if state is None:
            return
        if state.get("version") == 1:
            self._old_mark = (state.get("watermark", ""), set(state.get("done", [])))
            return
        self.done = {k: list(v) for k, v in state.get("objects", {}).items()}
        self.partial = {k: list(v) for k, v in state.get("partial", {}).items()}

    def _save(self) -> None:
        with self._lock:
            doc = {"version": _FORMAT, "objects": dict(self.done), "partial": dict(self.partial)}
            known = len(self.done)
        try:
            self.checkpoint_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            statefile.write(self.checkpoint_path, doc)
        except OSError as exc:
            # called from the sinks' delivery threads (acknowledgements): raising there ended them.
            # What is in memory is right; the file catches up at the next save that succeeds.
            telemetry.event(logging.ERROR, "alb read set could not be saved; objects delivered since "
                            "the last save are read again after a restart before the next one",
                            source=self.name, path=str(self.checkpoint_path), error=str(exc))
            return
        self._known.set(known)

    # -- acknowledgements --------------------------------------------------------------------

    def pending(self) -> int:
        with self._lock:
            return sum(r.acked.count(False) for r in self._reading.values())

    def _chunk_done(self, key: str, index: int) -> Callable[[Ack], None]:
        def done(_ack: Ack) -> None:
            with self._lock:
                reading = self._reading[key]
                before = reading.leading()
                reading.acked[index] = True
                after = reading.leading()
                finished = all(reading.acked)
                info = reading.info
                if finished:
                    del self._reading[key]
                    self.partial.pop(key, None)
                    self.done[key] = [info.version, info.day.isoformat() if info.day else ""]
                elif after > before:
                    self.partial[key] = [info.version, after]
            if finished:
                self._save()
                self._read_objects.inc()
                telemetry.event(logging.INFO, "alb object delivered", source=self.name, key=key)
            elif after > before:
                self._save()
        return done

    def close(self) -> None:
        self._save()

    # -- the loop ----------------------------------------------------------------------------

    def run(self, emit: Callable[[Chunk], None], stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self._poll(emit, stop)
            except Exception as exc:  # a listing error must not end the source: log, wait, retry
                # an S3Error is one line naming the bucket, the prefix and what to do
                telemetry.alb_object_failed(self.name, self.cfg.prefix, f"listing: {str(exc)[:500]}")
            stop.wait(self.cfg.poll_interval_s)

    def _list(self) -> list[ObjectInfo]:
        now = time.time()
        walked = now >= self._next_walk
        if walked:
            self._roots, self._loose = find_roots(self.lister, self.cfg.prefix)
            self._next_walk = now + _WALK_SECS
        days = window_days(self.cfg.lookback_hours, now)
        found = scan(self.lister, self.cfg.prefix, self._roots, days) + self._loose
        # forget what can no longer be listed: date folders out of the window, loose objects gone
        first = days[0].isoformat()
        loose = {o.key for o in self._loose}
        with self._lock:
            before = len(self.done)
            for key, (_version, day) in list(self.done.items()):
                if (day and day < first) or (not day and walked and key not in loose):
                    del self.done[key]
            listed = {o.key for o in found}
            stale = [k for k in self.partial if k not in listed and k not in self._reading]
            for key in stale:
                del self.partial[key]
            pruned = len(self.done) != before or bool(stale)
        if pruned:
            self._save()
        return sorted(found, key=lambda o: (o.modified, o.key))

    def _poll(self, emit: Callable[[Chunk], None], stop: threading.Event) -> None:
        objects = self._list()
        if self._old_mark is not None:
            self._take_over_old_mark(objects)
        for info in objects:
            if stop.is_set():
                return
            with self._lock:
                if info.key in self._reading:
                    continue
                known = self.done.get(info.key)
                if known is not None and known[0] == info.version:
                    continue
                later = self._sorts_after(info.key)
            if known is not None:
                telemetry.event(logging.WARNING, "alb object changed since it was read: reading it again",
                                source=self.name, key=info.key, was=known[0], now=info.version)
            elif later is not None:
                telemetry.alb_object_late(self.name, info.key, later)
            self._read(info, emit)

    def _sorts_after(self, key: str) -> str | None:
        """The greatest key already read in ``key``'s folder tree root that sorts after it, if any."""
        root = key.rsplit("/", 4)[0] if day_of(key) is not None else key.rsplit("/", 1)[0]
        after = [k for k in self.done if k > key and k.startswith(root)]
        return max(after) if after else None

    def _take_over_old_mark(self, objects: list[ObjectInfo]) -> None:
        """A version-1 checkpoint kept a mark: objects up to it (or listed done) count as read."""
        assert self._old_mark is not None
        mark, done = self._old_mark
        with self._lock:
            for o in objects:
                if o.key <= mark or o.key in done:
                    self.done[o.key] = [o.version, o.day.isoformat() if o.day else ""]
        self._old_mark = None
        telemetry.event(logging.WARNING, "alb checkpoint of an older version taken over: objects up to its "
                        "mark count as read", source=self.name, mark=mark)
        self._save()

    def _read(self, info: ObjectInfo, emit: Callable[[Chunk], None]) -> None:
        try:
            data = decompress(info.key, self.lister.read(info.key))
        except (OSError, EOFError, zlib.error) as exc:  # torn, still being copied, or gone
            telemetry.alb_object_failed(self.name, info.key, str(exc)[:300])
            return
        except S3Error as exc:  # one line naming the bucket, the key and what to do
            telemetry.alb_object_failed(self.name, info.key, str(exc)[:500])
            return
        except Exception as exc:  # anything else: the next poll tries again
            telemetry.alb_object_failed(self.name, info.key, f"{type(exc).__name__}: {str(exc)[:300]}")
            return
        lines = [ln for ln in data.decode("utf-8", "replace").split("\n") if ln.strip()]
        chunks = [lines[i:i + CHUNK_LINES] for i in range(0, len(lines), CHUNK_LINES)]
        with self._lock:
            resumed = self.partial.get(info.key)
            skip = resumed[1] if resumed is not None and resumed[0] == info.version else 0
            reading = _Reading(info, [False] * len(chunks[skip:]), skip)
            self._reading[info.key] = reading
        telemetry.METRICS.lines_read.labels(self.name).inc(sum(len(c) for c in chunks[skip:]))
        telemetry.METRICS.bytes_read.labels(self.name).inc(len(data))
        if skip:
            telemetry.event(logging.INFO, "alb object resumed after its acknowledged chunks",
                            source=self.name, key=info.key, chunks_skipped=skip, chunks=len(chunks))
        if not reading.acked:  # empty, or every chunk acknowledged before a restart
            self._chunk_done_all(info)
            return
        for i, part in enumerate(chunks[skip:]):
            emit(Chunk(part, Ack(self.sinks, self._chunk_done(info.key, i)), sum(len(x) + 1 for x in part),
                       {**self.meta, "object": info.key}, None, time.time_ns()))

    def _chunk_done_all(self, info: ObjectInfo) -> None:
        with self._lock:
            self._reading.pop(info.key, None)
            self.partial.pop(info.key, None)
            self.done[info.key] = [info.version, info.day.isoformat() if info.day else ""]
        self._save()
