"""The running agent: sources → parser → transforms → encoder → every sink, and a clean stop.

Each source runs in its own thread and does the per-chunk work itself (parse, transform,
encode): the CPU-heavy steps are batched per chunk, and a sink buffer that is full blocks the
source's thread, which simply stops reading — memory stays bounded whatever the input rate.
Sinks deliver from their own threads.

Stopping (SIGTERM/SIGINT): sources stop reading; sinks deliver what they hold within
``shutdown_timeout_secs``; then — pending acknowledgements drained — each source writes its
final checkpoint. Whatever was not acknowledged by then is read again after the restart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

from logharbor.agent import telemetry
from logharbor.agent.config import AgentConfig
from logharbor.agent.registry import SINKS, SOURCES, TRANSFORMS, build_parser_for
from logharbor.agent.types import AgentError, Chunk, Encoded, Sink, Source

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


def _encode_records(records: list[dict[str, Any]], meta: dict[str, Any], time_ns: int) -> bytes:
    """Records as NDJSON with the shared fields spliced in front of each serialized record.

    The shared fields are serialized once per chunk (once per set of keys a record overrides,
    so a record's own value wins and no key appears twice), not merged into every dict.
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
            key = frozenset(clash)
            found = heads.get(key)
            if found is None:
                found = heads[key] = dumps({k: v for k, v in meta.items() if k not in key})[:-1]
            head = found
        body = dumps(r, default=str)
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


class Agent:
    """Built from a validated config; ``run(stop)`` until ``stop`` is set, then shuts down cleanly."""

    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        data_dir = cfg.data_dir
        self.sinks: list[Sink] = [
            SINKS[s.type].build(name, s, data_dir) for name, s in cfg.sinks.items()]
        built = [(t.sources, TRANSFORMS[t.type].build(t)) for t in cfg.transforms]
        self.sources: list[Source] = []
        self.chains: dict[str, list[Callable[[Chunk], Chunk]]] = {}
        for name, s in cfg.sources.items():
            chain: list[Callable[[Chunk], Chunk]] = []
            spec = s.parser_spec()
            if spec is not None:
                chain.append(_parse_step(build_parser_for(spec)))
            chain.extend(tr for only, tr in built if only is None or name in only)
            self.chains[name] = chain
            self.sources.append(SOURCES[s.type].build(name, s, data_dir, len(self.sinks)))
        self._threads: list[threading.Thread] = []
        self._metrics_server: Any = None

    def process(self, source: str, chunk: Chunk) -> None:
        """Run one chunk through its source's chain and hand it to every sink."""
        for step in self.chains[source]:
            chunk = step(chunk)
        item = encode(chunk)
        for sink in self.sinks:
            sink.submit(item)

    def start(self, stop: threading.Event) -> None:
        """Start metrics, sinks and one thread per source."""
        m = self.cfg.metrics
        if m.port:
            try:
                self._metrics_server = telemetry.start_metrics_server(m.address, m.port)
            except OSError as exc:
                raise AgentError(f"metrics: cannot listen on {m.address}:{m.port}: {exc.strerror or exc}"
                                 " (set metrics.port to another port, or 0 to disable)") from None
        for sink in self.sinks:
            sink.start()
        for source in self.sources:
            name = source.name

            def emit(chunk: Chunk, _name: str = name) -> None:
                self.process(_name, chunk)

            th = threading.Thread(target=self._run_source, args=(source, emit, stop),
                                  name=f"source-{name}", daemon=True)
            th.start()
            self._threads.append(th)
        telemetry.event(20, "agent started", sources=[s.name for s in self.sources],
                        sinks=[s.name for s in self.sinks])

    @staticmethod
    def _run_source(source: Source, emit: Callable[[Chunk], None], stop: threading.Event) -> None:
        try:
            source.run(emit, stop)
        except Exception:  # a crashed source must be visible, and must not take the others down
            telemetry.log.exception("source failed", extra={"fields": {"source": source.name}})

    def shutdown(self) -> None:
        """Stop reading, drain sinks within the timeout, then write final checkpoints."""
        deadline = time.monotonic() + self.cfg.shutdown_timeout_secs
        for th in self._threads:
            th.join(0.5)
        for sink in self.sinks:
            sink.close(max(0.0, deadline - time.monotonic()))
        for th in self._threads:
            th.join(1.0)
        unacked = 0
        for source in self.sources:
            unacked += source.pending()
            source.close()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
        telemetry.event(20, "agent stopped", unacknowledged_chunks=unacked)

    def run(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set (by a signal handler), then shut down."""
        self.start(stop)
        stop.wait()
        self.shutdown()
