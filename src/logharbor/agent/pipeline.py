"""The running agent: sources → parser → transforms → encoder → every sink, a hot reload, a clean stop.

Each source runs in its own thread and does the per-chunk work itself (parse, transform,
encode): the CPU-heavy steps are batched per chunk, and a sink buffer that is full blocks the
source's thread, which simply stops reading — memory stays bounded whatever the input rate.

Fan-out: every sink has its own buffer and its own delivery threads. Handing a chunk to a sink
is a ``put`` into its buffer, which returns at once unless that buffer is full and configured
``when_full: block``; so a slow or dead receiver delays the other sinks only when its buffer is
full and the user asked for backpressure. A chunk's acknowledgement (what moves the source's
checkpoint) needs every sink: a memory buffer acknowledges after delivery, a disk buffer once
the chunk is fsync'd in it (it is replayed from there after a restart). A sink that must not
hold back the others' checkpoints for long therefore has a disk buffer: at-least-once, no stall.

Hot reload (:meth:`Agent.reload`, SIGHUP): the new file is read and validated; if it is not
valid the error is logged and the running config stays. Otherwise only the difference is
applied: unchanged sources and sinks keep running untouched; a changed sink stops its delivery
threads and its successor adopts the same buffer (nothing queued or in flight is lost or sent
twice); a removed sink drains within ``shutdown_timeout_secs`` and stops; a changed or removed
source stops reading, waits for its chunks' acknowledgements and writes its final checkpoint,
and a changed one starts again from that checkpoint; transforms are swapped between two chunks.

An agent whose every source ends (``stdin``) stops by itself at the end of its input, once
everything is delivered (``eof.py``).

Stopping (SIGTERM/SIGINT): sources stop reading; sinks deliver what they hold within
``shutdown_timeout_secs``; then — pending acknowledgements drained — each source writes its
final checkpoint. Whatever was not acknowledged by then is read again after the restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from logharbor import exactjson
from logharbor.agent import eof, statedir, telemetry
from logharbor.agent.buffer import DiskBuffer
from logharbor.agent.config import AgentConfig, ConfigError, load_config
from logharbor.agent.registry import SINKS, SOURCES, TRANSFORMS
from logharbor.agent.sources.common import build_parser_for
from logharbor.agent.types import Ack, AckStatus, AgentError, Chunk, Encoded, Sink, Source
from logharbor.types import RawRecord

if TYPE_CHECKING:
    from logharbor.formats.nginx_chunk import ChunkEncoder

__all__ = ["Agent", "encode"]

_TIME_KEYS = ("timestamp", "@timestamp", "time", "ts", "timeMillis")


def encode(chunk: Chunk) -> Encoded:
    """A chunk as NDJSON, every record with the chunk's shared fields (the record's own win).

    Raw lines take the fast path: the lines are JSON-escaped in one ``orjson.dumps`` of the
    whole list and spliced into a per-chunk template, with no dict per line. When no line holds
    a quote and none is a lone comma, the byte sequence ``","`` can only be the separator between
    two list items, so splitting on it is exact; otherwise (an escaped quote followed by a comma,
    or the line ``,``, also reads ``","``) each line is encoded on its own.
    """
    meta = chunk.meta
    if chunk.payload is not None:
        return Encoded(chunk.payload, len(chunk.lines), chunk.ack)
    if chunk.records is None:
        lines = chunk.lines
        if not lines:
            return Encoded(b"", 0, chunk.ack)
        head = orjson.dumps({"timestamp": chunk.time_ns, **meta})[:-1] + b',"message":'
        body = orjson.dumps(lines)[1:-1]
        if b'\\"' in body or "," in lines:  # regression: a line "," or ending in '",' split wrongly
            payload = b"".join([head + orjson.dumps(line) + b"}\n" for line in lines])
        else:
            payload = head + body.replace(b'","', b'"}\n' + head + b'"') + b"}\n"
        return Encoded(payload, len(lines), chunk.ack)
    records = chunk.records
    if not records:
        return Encoded(b"", 0, chunk.ack)
    return Encoded(_encode_records(records, meta, chunk.time_ns), len(records), chunk.ack)


def _encode_records(records: list[RawRecord], meta: RawRecord, time_ns: int) -> bytes:
    """Records as NDJSON with the shared fields spliced in front of each serialized record.

    The shared fields are serialized once per chunk (once per set of keys a record overrides,
    so a record's own value wins and no key appears twice), not merged into every dict. A shared
    field a record overrides with another value (the agent's ``host`` beside an app's own
    ``host``, a configured ``fields: {env: prod}`` beside a record's ``env``) is kept in the record
    as ``<name>_agent``: it used to vanish without a word. Not ``source``: the source type
    (``file``) is a default that a parser's own ``source`` (``nginx``) replaces by design, and the
    ``file`` field still says where the line came from.
    """
    dumps = orjson.dumps
    meta_keys = meta.keys()
    base = dumps(meta)[:-1]  # b'{"source":"file",...' without its closing brace
    heads: dict[frozenset[str], bytes] = {}
    out = []
    for r in records:
        if "timestamp" not in r and not any(k in r for k in _TIME_KEYS):
            r["timestamp"] = time_ns
        head = base
        clash = meta_keys & r.keys()
        if clash:
            for name in clash:
                if name == "source":
                    continue
                value = meta[name]
                if r[name] != value or type(r[name]) is not type(value):  # (True == 1 in Python)
                    kept, n = f"{name}_agent", 2
                    while (kept in r and r[kept] != value) or kept in meta:
                        kept, n = f"{name}_agent{n}", n + 1
                    r[kept] = value
            key = frozenset(clash)
            found = heads.get(key)
            if found is None:
                found = heads[key] = dumps({k: v for k, v in meta.items() if k not in key})[:-1]
            head = found
        try:
            body = dumps(r, default=str)
        except TypeError:  # an integer beyond 64 bits (a json line's, a regex parser's): its digits
            body = exactjson.dumps(r, default=str)
        if head == b"{":
            out.append(body)
        elif len(body) == 2:
            out.append(head + b"}")
        else:
            out.append(head + b"," + body[1:])
    out.append(b"")
    return b"\n".join(out)


def _parse_step(parser: Any) -> Callable[[Chunk], Chunk]:
    parse = parser.parse

    def step(chunk: Chunk) -> Chunk:
        chunk.records = [parse(line) for line in chunk.lines]
        return chunk

    return step


def _fused_step(parser: Any, encoder: ChunkEncoder) -> Callable[[Chunk], Chunk]:
    """Parse and encode a chunk in one compiled pass (NGINX text formats, ``formats/nginx_chunk.py``),
    when nothing comes between the parser and the encoder; the same bytes as parse + ``encode``."""
    parse = parser.parse

    def step(chunk: Chunk) -> Chunk:
        meta = chunk.meta
        head = encoder.head(meta)
        if head is None:  # a shared field named like a record key: the Python path merges them
            chunk.records = [parse(line) for line in chunk.lines]
            return chunk
        time_ns = chunk.time_ns

        def fallback(line: str) -> bytes:
            return _encode_records([parse(line)], meta, time_ns)

        chunk.payload = encoder.encode(chunk.lines, head, time_ns, fallback)
        return chunk

    return step


class _Running:
    """A source with its own stop event and thread (so a reload can stop one source alone)."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None


class Agent:
    """Built from a validated config; ``run(stop)`` until ``stop`` is set, then shuts down cleanly."""

    def __init__(self, cfg: AgentConfig, config_path: str | Path | None = None) -> None:
        self.cfg = cfg
        self.config_path = Path(config_path) if config_path is not None else None
        statedir.prepare(cfg.data_dir)  # private (0700/0600), before any state file is opened
        # a source sees one consumer, the pipeline; ``process`` fans each chunk out to the sinks
        # of the moment, so the set of sinks can change while sources run. Sources are built
        # first (they read their checkpoints, writing nothing) and every disk buffer is checked
        # before any is opened: state of a newer release stops the agent before anything is
        # written (formatversion.NewerFormat)
        self.running: dict[str, _Running] = {
            name: _Running(SOURCES[s.type].build(name, s, cfg.data_dir, 1))
            for name, s in cfg.sources.items()}
        for name, s in cfg.sinks.items():
            buffer = getattr(s, "buffer", None)
            if buffer is not None and buffer.type == "disk":
                DiskBuffer.check_version(cfg.data_dir / "buffer" / name)
        self.sinks: dict[str, Sink] = {
            name: SINKS[s.type].build(name, s, cfg.data_dir) for name, s in cfg.sinks.items()}
        self._fanout: tuple[Sink, ...] = tuple(self.sinks.values())
        self.chains: dict[str, list[Callable[[Chunk], Chunk]]] = self._chains(cfg)
        self._metrics_server: Any = None
        self._reload_lock = threading.RLock()
        self._closing = False

    @property
    def sources(self) -> list[Source]:
        return [r.source for r in self.running.values()]

    @staticmethod
    def _chains(cfg: AgentConfig) -> dict[str, list[Callable[[Chunk], Chunk]]]:
        built = [(t.sources, TRANSFORMS[t.type].build(t)) for t in cfg.transforms]
        chains: dict[str, list[Callable[[Chunk], Chunk]]] = {}
        for name, s in cfg.sources.items():
            chain: list[Callable[[Chunk], Chunk]] = []
            transforms = [tr for only, tr in built if only is None or name in only]
            spec = s.parser_spec()
            if spec is not None:
                from logharbor.formats.nginx_chunk import chunk_encoder  # formats: only when a parser is set

                parser = build_parser_for(spec)
                encoder = None if transforms else chunk_encoder(parser, _TIME_KEYS)
                chain.append(_parse_step(parser) if encoder is None else _fused_step(parser, encoder))
                if encoder is not None:
                    telemetry.event(20, "source parses and encodes in C (nginx chunk path)", source=name)
            chain.extend(transforms)
            chains[name] = chain
        return chains

    def process(self, source: str, chunk: Chunk) -> None:
        """Run one chunk through its source's chain and hand it to every sink."""
        for step in self.chains[source]:
            chunk = step(chunk)
        item = encode(chunk)
        sinks = self._fanout  # one snapshot: the ack waits for exactly these sinks
        if len(sinks) != 1:
            outer = chunk.ack
            item.ack = Ack(len(sinks), lambda a: outer.done(a.status))
        for sink in sinks:
            sink.submit(item)

    def start(self, stop: threading.Event) -> None:
        """Start metrics, sinks and one thread per source."""
        self._start_metrics()
        for sink in self.sinks.values():
            sink.start()
        for name, r in self.running.items():
            self._start_source(name, r)
        telemetry.event(20, "agent started", sources=list(self.running), sinks=list(self.sinks))

    def _start_metrics(self) -> None:
        m = self.cfg.metrics
        if m.port:
            try:
                self._metrics_server = telemetry.start_metrics_server(m.address, m.port)
            except OSError as exc:
                raise AgentError(f"metrics: cannot listen on {m.address}:{m.port}: {exc.strerror or exc}"
                                 " (set metrics.port to another port, or 0 to disable)") from None

    def _start_source(self, name: str, r: _Running) -> None:
        def emit(chunk: Chunk, _name: str = name) -> None:
            self.process(_name, chunk)

        r.thread = threading.Thread(target=self._run_source, args=(r.source, emit, r.stop),
                                    name=f"source-{name}", daemon=True)
        r.thread.start()

    @staticmethod
    def _run_source(source: Source, emit: Callable[[Chunk], None], stop: threading.Event) -> None:
        try:
            source.run(emit, stop)
        except Exception:  # a crashed source must be visible, and must not take the others down
            telemetry.log.exception("source failed", extra={"fields": {"source": source.name}})

    def shutdown(self) -> None:
        """Stop reading, drain sinks within the timeout, then write final checkpoints."""
        deadline = time.monotonic() + self.cfg.shutdown_timeout_secs
        with self._reload_lock:
            self._closing = True  # a source replaced late by a reload is not started any more
        for r in self.running.values():
            r.stop.set()
        for r in self.running.values():
            if r.thread is not None:
                r.thread.join(0.5)
        for sink in self.sinks.values():
            sink.close(max(0.0, deadline - time.monotonic()))
        for r in self.running.values():
            if r.thread is not None:
                r.thread.join(1.0)
        unacked = 0
        for r in self.running.values():
            unacked += r.source.pending()
            r.source.close()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
        telemetry.event(20, "agent stopped", unacknowledged_chunks=unacked)

    def run(self, stop: threading.Event, reload: threading.Event | None = None) -> int:
        """Run until ``stop`` is set (by a signal handler), reloading the config each time
        ``reload`` is set (SIGHUP), then shut down; the exit status (0, or 1 when the input of an
        agent whose sources all end was not entirely delivered: see ``eof.py``)."""
        self.start(stop)
        status = 0
        while not stop.is_set():
            if reload is not None and reload.is_set():
                reload.clear()
                self.reload()
            if eof.input_ended((r.source, r.thread) for r in self.running.values()):
                status = eof.wait_delivered(self.sources, list(self.sinks.values()), stop)
                break
            stop.wait(0.1)
        self.shutdown()
        return status

    # -- hot reload -------------------------------------------------------------------------------

    def reload(self, path: str | Path | None = None) -> bool:
        """Re-read the config file and apply the difference; False (old config kept) if invalid."""
        where = Path(path) if path is not None else self.config_path
        if where is None:
            telemetry.event(logging.ERROR, "config reload: no config file to read")
            return False
        with self._reload_lock:
            try:
                new = load_config(where)
                self._check_reloadable(new, str(where))
            except ConfigError as exc:
                first = str(exc).splitlines()[0]
                parts = first.split(": ", 2)
                fields = ({"file": parts[0], "key": parts[1], "reason": parts[2]} if len(parts) == 3
                          else {"file": str(where), "reason": first})
                telemetry.event(logging.ERROR, "config reload failed: keeping the running config",
                                **fields, errors=str(exc).splitlines())
                return False
            try:
                summary = self._apply(new)
            except Exception:  # a failure half way must be loud; what runs keeps running
                telemetry.log.exception("config reload failed while applying it")
                return False
        telemetry.event(20, "config reloaded", file=str(where), **summary)
        return True

    def _check_reloadable(self, new: AgentConfig, path: str) -> None:
        """What a running agent cannot change in place (a restart, or a new sink name, can)."""
        problems = []
        if new.data_dir != self.cfg.data_dir:
            problems.append(("data_dir", "cannot change while running (restart the agent)"))
        for name, s in new.sinks.items():
            old = self.cfg.sinks.get(name)
            if old is None:
                continue
            for key in ("type", "encryption_key_file"):
                if getattr(old.buffer, key) != getattr(s.buffer, key):
                    problems.append((f"sinks.{name}.buffer.{key}", "cannot change while the sink runs "
                                     "(give the sink a new name, or restart the agent)"))
        if problems:
            raise ConfigError("\n".join(f"{path}: {key}: {why}" for key, why in problems))

    def _apply(self, new: AgentConfig) -> dict[str, list[str]]:
        old = self.cfg
        timeout = new.shutdown_timeout_secs
        same = lambda a, b: a.model_dump() == b.model_dump()  # noqa: E731
        sinks_changed = [n for n in new.sinks if n in old.sinks and not same(old.sinks[n], new.sinks[n])]
        sinks_added = [n for n in new.sinks if n not in old.sinks]
        sinks_removed = [n for n in old.sinks if n not in new.sinks]
        src_changed = [n for n in new.sources
                       if n in old.sources and not same(old.sources[n], new.sources[n])]
        src_added = [n for n in new.sources if n not in old.sources]
        src_removed = [n for n in old.sources if n not in new.sources]
        chains = self._chains(new)  # built first: a transform that fails to build changes nothing

        # sinks: a changed one hands its buffer (queued and unacknowledged items) to its successor
        sinks: dict[str, Sink] = {}
        for name, s in new.sinks.items():
            current = self.sinks.get(name)
            if current is not None and name not in sinks_changed:
                sinks[name] = current
                continue
            adopted = current.detach(timeout) if current is not None else None
            sink = SINKS[s.type].build(name, s, new.data_dir, buffer=adopted)
            sink.start()
            sinks[name] = sink
        retired = [self.sinks[n] for n in sinks_removed]
        for r in retired:
            r.retired = True
        # swap: chunks processed from now on go through the new chains to the new set of sinks
        for name, chain in chains.items():
            self.chains[name] = chain
        self.sinks = sinks
        self._fanout = tuple(sinks.values())

        for sink in retired:  # drained (what reaches them now is settled as dropped), then gone
            sink.close(timeout)
            for item in sink.buffer.take_all():
                if item.ack is not None:
                    item.ack.done(AckStatus.DROPPED)

        # sources: stop, settle acknowledgements, final checkpoint; changed ones start again
        stopping = {name: self.running.pop(name) for name in (*src_changed, *src_removed)}
        for r in stopping.values():
            r.stop.set()
        for name, r in stopping.items():
            if r.thread is not None:
                r.thread.join(timeout + 1.0)
            if r.thread is not None and r.thread.is_alive():
                # held in a full sink buffer (when_full: block): it stops when that frees up, and
                # only then may its successor read from its checkpoint
                telemetry.event(logging.WARNING, "config reload: source still blocked by a full sink "
                                "buffer; it is replaced once it stops", source=name)
                threading.Thread(target=self._replace_source, args=(name, r, new, timeout),
                                 name=f"reload-{name}", daemon=True).start()
                continue
            self._replace_source(name, r, new, timeout)
        for name in src_added:
            self._replace_source(name, None, new, timeout)

        if new.metrics != old.metrics:
            if self._metrics_server is not None:
                self._metrics_server.shutdown()
                self._metrics_server = None
            self.cfg = new
            try:
                self._start_metrics()
            except AgentError as exc:
                telemetry.event(logging.ERROR, str(exc))
        if new.log_level != old.log_level:
            telemetry.log.setLevel(new.log_level.upper())
        self.cfg = new
        return {"sources_added": src_added, "sources_changed": src_changed, "sources_removed": src_removed,
                "sinks_added": sinks_added, "sinks_changed": sinks_changed, "sinks_removed": sinks_removed,
                "transforms": [t.type for t in new.transforms]}

    def _replace_source(self, name: str, old: _Running | None, new: AgentConfig, timeout: float) -> None:
        """Settle a stopped source (acknowledgements, final checkpoint), then start its successor
        from that checkpoint if ``new`` still has it."""
        if old is not None:
            if old.thread is not None:
                old.thread.join()
            deadline = time.monotonic() + timeout
            while old.source.pending() and time.monotonic() < deadline:
                time.sleep(0.02)
            if old.source.pending():
                telemetry.event(logging.WARNING, "config reload: source stopped with unacknowledged "
                                "chunks (they are read again: at-least-once)", source=name,
                                chunks=old.source.pending())
            old.source.close()
        s = new.sources.get(name)
        if s is None:
            self.chains.pop(name, None)
            return
        r = _Running(SOURCES[s.type].build(name, s, new.data_dir, 1))
        with self._reload_lock:  # re-entrant: held by ``reload`` when not called late
            if self._closing:
                return
            self.running[name] = r
            self._start_source(name, r)
