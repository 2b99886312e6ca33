"""Tail container log files (``container``): Kubernetes' ``/var/log/containers``, Docker's json-file.

The files are followed exactly like the ``file`` source does (it is a subclass: same rotation
rules, same device+inode+fingerprint checkpoints). Glob matches that are symlinks — every entry of
``/var/log/containers`` points into ``/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log`` — are
followed to the real file, so the kubelet's rotation (``0.log`` renamed to ``0.log.<time>``, a new
``0.log`` opened, the old one gzip'd later) is the ordinary rename rotation in the real directory.

Each line is decoded before anything else sees it:

- CRI (containerd, CRI-O): ``<RFC 3339 time> <stdout|stderr> <P|F> <text>``; ``P`` parts are joined,
  per stream, up to their ``F`` line;
- Docker ``json-file``: ``{"log": "text\\n", "stream": "stdout", "time": "…"}``; an entry whose
  ``log`` lacks its newline is a part of a longer line, joined with the next ones of its stream;
- ``format: auto`` tells them apart per line (``{`` starts a Docker line).

The container's time becomes the record's ``timestamp`` (unless the app's own line, parsed by
``parser``, carries one), ``stream`` is kept, and pod, namespace, container name and id come from
the file's name; records without a ``service`` of their own get the container's name
(``service_from_container``). Then ``multiline`` (per stream) and ``parser`` apply to the joined
text. A line that is neither framing is shipped whole with ``parse_error``.

A joined line longer than ``max_line_bytes`` keeps its first ``max_line_bytes`` and is marked
``truncated: true`` with its ``original_bytes`` (logged, counted); the rest of its parts are
skipped up to its last one, so they never make a line of their own. A line whose last part does
not come within ``partial_timeout_secs`` (a container that exited mid-line) is shipped marked
``partial: true``.

Checkpoints never move past a line that is still held (a partial waiting for its end, a stack
trace waiting for its next line): after a crash those lines are read again (a duplicate, no loss).
"""

from __future__ import annotations

import os
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import Field, model_validator

from logharbor.agent import telemetry
from logharbor.agent.sources import file as file_source
from logharbor.agent.sources.common import build_parser_for
from logharbor.agent.sources.file import FileSource, Tailed
from logharbor.agent.types import Chunk
from logharbor.formats.multiline import PartialLine, fields_of, parse_cri, parse_docker
from logharbor.record import TIMESTAMP_KEYS, RecordError, parse_timestamp
from logharbor.types import JsonObject, RawRecord

__all__ = ["Config", "ContainerSource", "path_metadata"]

#: ``<pod>_<namespace>_<container>-<64 hex id>.log`` (the kubelet's /var/log/containers names)
_CONTAINERS = re.compile(r"^([^_/]+)_([^_/]+)_([^/]+)-([0-9a-f]{64})\.log")
#: ``…/<namespace>_<pod>_<uid>/<container>/<restart>.log`` (the kubelet's /var/log/pods layout)
_PODS = re.compile(r"/([^_/]+)_([^_/]+)_([0-9a-fA-F-]+)/([^/]+)/\d+\.log[^/]*$")
#: ``/var/lib/docker/containers/<id>/<id>-json.log``
_DOCKER = re.compile(r"/([0-9a-f]{64})/\1-json\.log[^/]*$")
_NOT_FRAMED = {"cri": "not a CRI container log line", "docker": "not a Docker json-file log line",
               "auto": "neither a CRI nor a Docker json-file log line"}


def path_metadata(path: str) -> dict[str, str]:
    """The ``kubernetes`` fields a log file's path tells: pod, namespace, container, ids."""
    out: dict[str, str] = {}
    m = _PODS.search(path)
    if m:
        out.update(namespace_name=m[1], pod_name=m[2], pod_uid=m[3], container_name=m[4])
    m = _CONTAINERS.match(os.path.basename(path))
    if m:
        out.update(pod_name=m[1], namespace_name=m[2], container_name=m[3], container_id=m[4])
    m = _DOCKER.search(path)
    if m:
        out["container_id"] = m[1]
    return out


_DOCKER_CONFIG_MAX = 4 * 1024 * 1024


def docker_metadata(directory: str) -> dict[str, str]:
    """The container's name (and its Compose service) from Docker's ``config.v2.json`` beside a
    json-file log (``/var/lib/docker/containers/<id>/``): what ``docker ps`` shows, which the log
    file's path does not. Empty when the file cannot be read (the agent may not see it)."""
    path = os.path.join(directory, "config.v2.json")
    try:
        with open(path, "rb") as fh:
            data = fh.read(_DOCKER_CONFIG_MAX + 1)
        config = orjson.loads(data) if len(data) <= _DOCKER_CONFIG_MAX else None
    except (OSError, orjson.JSONDecodeError):
        return {}
    if not isinstance(config, dict):
        return {}
    out: dict[str, str] = {}
    name = config.get("Name")
    if isinstance(name, str) and name.strip("/"):
        out["container_name"] = name.strip("/")
    labels = (config.get("Config") or {}).get("Labels") if isinstance(config.get("Config"), dict) else None
    service = labels.get("com.docker.compose.service") if isinstance(labels, dict) else None
    if isinstance(service, str) and service and out:
        out["compose_service"] = service
    return out


class Config(file_source.Config):
    """Options of the ``container`` source: the ``file`` options, plus the framing and metadata."""

    type: Literal["container"]  # type: ignore[assignment]
    include: list[str] = Field(default_factory=lambda: ["/var/log/containers/*.log"], min_length=1)
    format: Literal["auto", "cri", "docker"] = "auto"
    env_vars: dict[str, str] = Field(
        default_factory=lambda: {"host": "NODE_NAME", "kubernetes.host": "NODE_NAME"})
    service_from_container: bool = True
    partial_timeout_secs: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _build_once(self) -> Config:
        """Build the parser and the multiline aggregator now, so a bad option fails ``--check``."""
        from logharbor.formats.multiline import build_multiline

        spec = super().parser_spec()
        if spec is not None:
            try:
                build_parser_for(spec)
            except Exception as exc:  # any build error is a config error, named by pydantic
                raise ValueError(f"parser: {exc}") from None
        if self.multiline is not None:
            if self.multiline.get("cri") or self.multiline.get("docker"):
                raise ValueError("multiline: the container source decodes CRI and Docker framing itself; "
                                 "give only the grouping options (preset, start_pattern, …)")
            try:
                build_multiline(**self.multiline)
            except Exception as exc:  # as above
                raise ValueError(str(exc)) from None
        return self

    def parser_spec(self) -> tuple[str, JsonObject] | None:
        """None: the source parses the joined text itself (the pipeline would lose the framing)."""
        return None

    def own_parser_spec(self) -> tuple[str, JsonObject] | None:
        return super().parser_spec()


@dataclass
class _Partial(PartialLine):
    start: int = 0  # file offset of its first part


@dataclass
class _Stream:
    """One stream's (stdout, stderr) unfinished work: a partial line, and lines multiline holds."""

    partial: _Partial | None = None
    agg: Any = None
    held: deque[tuple[int, str]] = field(default_factory=deque)  # (start offset, time) per line


class _Decoder:
    """A file's decoding state (kept in ``Tailed.agg``): partial lines and multiline, per stream."""

    def __init__(self, source: ContainerSource, path: str) -> None:
        self.src = source
        self.path = path  # (for the log line of a cut line)
        self.streams: dict[str, _Stream] = {}

    def pending(self) -> bool:
        return any(s.partial is not None or s.held for s in self.streams.values())

    def safe_off(self, end: int) -> int:
        """Every line before this offset is in an emitted record."""
        starts = [s.partial.start for s in self.streams.values() if s.partial is not None]
        starts += [s.held[0][0] for s in self.streams.values() if s.held]
        return min(starts, default=end)

    def feed(self, body: bytes, offset: int, now: float) -> list[RawRecord]:
        out: list[RawRecord] = []
        fmt = self.src.cfg.format
        pos = offset
        for raw in body.split(b"\n"):
            start, pos = pos, pos + len(raw) + 1
            if raw[:1] == b"\x00":  # zero-filled bytes a crash left before a line: no data
                raw = raw.lstrip(b"\x00")
            line = raw.decode("utf-8", "replace").rstrip("\r")
            if not line:
                continue
            docker = fmt == "docker" or (fmt == "auto" and line.startswith("{"))
            framed = parse_docker(line) if docker else parse_cri(line)
            if framed is None:
                out.append({"message": line, "parse_error": _NOT_FRAMED[fmt]})
                continue
            ts, stream, is_partial, text = framed
            st = self.streams.setdefault(stream, _Stream())
            p = st.partial
            if p is None and not is_partial:
                self._line(st, stream, start, ts, text, now, out)
                continue
            if p is None:
                p = st.partial = _Partial(time=ts, start=start)
            p.add(text, self.src.cfg.max_line_bytes)  # past it: counted, skipped up to the last part
            p.last = now
            if not is_partial:
                st.partial = None
                self._line(st, stream, p.start, p.time, "".join(p.parts), now, out, self._fields(p, True))
        return out

    def _fields(self, p: _Partial, ended: bool) -> dict[str, object] | None:
        """How a joined line differs from what the container wrote (logged when it was cut)."""
        fields = p.fields(ended)
        if fields is not None and fields.get("truncated"):
            telemetry.line_truncated(self.src.name, self.path, p.start, p.total, p.size,
                                     why="container max_line_bytes")
        return fields

    def flush(self, now: float, final: bool) -> list[RawRecord]:
        """Partials and events that waited long enough (or everything, at the file's end): a line
        whose last part never came is shipped marked ``partial``."""
        out: list[RawRecord] = []
        for stream, st in self.streams.items():
            p = st.partial
            if p is not None and (final or now - p.last >= self.src.cfg.partial_timeout_secs):
                st.partial = None
                self._line(st, stream, p.start, p.time, "".join(p.parts), now, out, self._fields(p, False))
            if st.agg is not None and st.agg.pending():
                self._events(st, stream, st.agg.close() if final else st.agg.flush(now), out)
        return out

    def _line(self, st: _Stream, stream: str, start: int, ts: str, text: str, now: float,
              out: list[RawRecord], fields: dict[str, object] | None = None) -> None:
        if self.src.cfg.multiline is None:
            rec = self.src.record(text, ts, stream)
            if fields:
                rec.update(fields)
            out.append(rec)
            return
        if st.agg is None:
            from logharbor.formats.multiline import build_multiline

            st.agg = build_multiline(**self.src.cfg.multiline)
        st.held.append((start, ts))
        self._events(st, stream, st.agg.feed(text, now, fields), out)

    def _events(self, st: _Stream, stream: str, events: list[str], out: list[RawRecord]) -> None:
        for event in events:
            ts = ""
            for i in range(min(event.count("\n") + 1, len(st.held))):
                _, t = st.held.popleft()
                if i == 0:
                    ts = t
            rec = self.src.record(event, ts, stream)
            fields = fields_of(event)
            if fields:
                rec.update(fields)
            out.append(rec)
        if not st.agg.pending():
            st.held.clear()


class ContainerSource(FileSource):
    """The ``container`` source (see the module docstring)."""

    def __init__(self, name: str, cfg: Config, data_dir: Path, sinks: int) -> None:
        super().__init__(name, cfg, data_dir, sinks)
        self.cfg: Config = cfg
        extra: RawRecord = {}
        for path, var in cfg.env_vars.items():
            if os.environ.get(var):
                _set_path(extra, path, os.environ[var])
        self.env_meta = extra
        self.meta_base = {"source": "container", "host": self.meta_base["host"], **cfg.fields}
        self.parser: Any = None
        spec = cfg.own_parser_spec()
        if spec is not None:
            self.parser = build_parser_for(spec)
        # a file line holds one framed part (Docker and containerd split lines at 16 KiB): never
        # cut one below 1 MiB, whatever the limit of the joined text (max_line_bytes) is
        self.line_limit = max(cfg.max_line_bytes, 1024 * 1024)
        self.block = min(cfg.read_block_bytes, self.line_limit)
        self._names: dict[str, str] = {}  # real path → the glob match that led there (a symlink)
        self._meta: dict[str, RawRecord] = {}

    # -- discovery: follow the symlinks, remember what their names said ---------------------------

    def _paths(self) -> list[str]:
        if len(self._names) > 20000:  # pods come and go: forget names no longer matched
            self._names.clear()
            self._meta.clear()
        out: set[str] = set()
        for path in super()._paths():
            real = os.path.realpath(path)
            if real != path:
                self._names[real] = path
                self._meta.pop(real, None)
            out.add(real)
        return sorted(out)

    def _file_meta(self, path: str) -> RawRecord:
        meta = self._meta.get(path)
        if meta is None:
            kube: RawRecord = path_metadata(path)
            link = self._names.get(path)
            if link is None:  # a rotated sibling: what the symlink of its directory's file said
                directory = os.path.dirname(path) + os.sep
                link = next((n for r, n in self._names.items() if r.startswith(directory)), None)
            if link is not None:
                kube.update(path_metadata(link))
            if "container_id" in kube and "container_name" not in kube:
                kube.update(docker_metadata(os.path.dirname(path)))  # Docker's json-file: its config
            meta = dict(self.meta_base)
            meta["file"] = telemetry.shown(path)
            ours = dict(self.env_meta.get("kubernetes") or {})
            ours.update(kube)
            if ours:
                meta["kubernetes"] = ours
            if self.cfg.service_from_container and "container_name" in ours and "service" not in meta:
                # a record's own service still wins; Compose names the service, the container is one
                # of its replicas (shop-web-1)
                meta["service"] = ours.pop("compose_service", None) or ours["container_name"]
            ours.pop("compose_service", None)
            for key, value in self.env_meta.items():
                if key != "kubernetes" and key not in self.cfg.fields:
                    meta[key] = value
            if len(self._meta) > 10000:
                self._meta.clear()
            self._meta[path] = meta
        return meta

    # -- records ------------------------------------------------------------------------------------

    def record(self, text: str, ts: str, stream: str) -> RawRecord:
        """One decoded line (or joined event) as a record: parsed text, container time, stream."""
        rec = self.parser.parse(text) if self.parser is not None else {"message": text}
        if ts and not any(k in rec for k in TIMESTAMP_KEYS):
            try:
                rec["timestamp"] = parse_timestamp(ts)
            except RecordError:
                rec["container_time"] = ts
                rec.setdefault("parse_error", f"container time {ts!r} is not a timestamp")
        rec["stream"] = stream
        return rec

    def _decoder(self, t: Tailed) -> _Decoder:
        if t.agg is None:
            t.agg = _Decoder(self, t.path)
        return t.agg  # type: ignore[no-any-return]

    def _emit(self, t: Tailed, body: bytes, emit: Callable[[Chunk], None]) -> None:
        end = t.read_off + len(body)
        dec = self._decoder(t)
        records = dec.feed(body, t.read_off, time.monotonic())
        self._send_records(t, records, body, end, dec.safe_off(end), emit)

    def _flush_multiline(self, t: Tailed, emit: Callable[[Chunk], None], final: bool) -> None:
        dec = t.agg
        if dec is None or not dec.pending():
            return
        records = dec.flush(time.monotonic(), final)
        if records:
            self._send_records(t, records, b"", t.read_off, dec.safe_off(t.read_off), emit)

    def _last_line(self, t: Tailed, body: bytes, emit: Callable[[Chunk], None]) -> None:
        """A runtime writes whole lines: one without its newline at the end of a rotated file goes
        through the decoder like any other (which says when it is no framing)."""
        self._emit(t, body, emit)

    def _send_cut(self, t: Tailed, text: str, length: int, end: int, before: bytes,
                  emit: Callable[[Chunk], None]) -> None:
        """A file line over the limit is no framed part (those are 16 KiB): shipped as it is,
        cut and marked."""
        rec: RawRecord = {"message": text, "parse_error": _NOT_FRAMED[self.cfg.format],
                          "truncated": True, "original_bytes": length}
        ack = self._track(t, b"", end, end, before)
        self._lines.inc()
        emit(Chunk([], ack, len(text), dict(self._file_meta(t.path)), [rec], time.time_ns()))

    def _send_records(self, t: Tailed, records: list[RawRecord], body: bytes, end: int,
                      ack_end: int, emit: Callable[[Chunk], None]) -> None:
        ack = self._track(t, body, end, ack_end)
        self._lines.inc(len(records))
        self._bytes.inc(len(body))
        emit(Chunk([], ack, len(body), dict(self._file_meta(t.path)), records, time.time_ns()))


def _set_path(obj: RawRecord, path: str, value: Any) -> None:
    """``a.b: v`` → ``{"a": {"b": v}}`` (only ``kubernetes.*`` nests; other dotted keys stay flat)."""
    if path.startswith("kubernetes."):
        obj.setdefault("kubernetes", {})[path.split(".", 1)[1]] = value
    else:
        obj[path] = value
