"""The server's app factory: builds the runtime (WAL, store, batcher) and mounts the routes.

Kept thin on purpose (Datasette's lesson): each feature lives in its own module and contributes a
router; this file only wires them together and owns start-up and shutdown order:
versions of every file (server/ondisk.py: a file of a newer release refuses the start before
anything is written) → metadata → store → WAL (recovering a torn tail) → batcher (replaying an
unfinished batch) → HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse

from logharbor import __version__
from logharbor.durable import write_atomic
from logharbor.formatversion import NewerFormat
from logharbor.sealing import Sealer
from logharbor.server.apidocs import api_docs_router
from logharbor.server.auth import AuthMiddleware, RateLimiter
from logharbor.server.compression import ResponseCompression
from logharbor.server.config import ServerConfig
from logharbor.server.diskspace import free_bytes
from logharbor.server.engine.batcher import Batcher
from logharbor.server.engine.batcher_progress import DamagedProgress
from logharbor.server.engine.mining import PatternMiner
from logharbor.server.engine.store.base import QueryCancelled, Store, StoreError
from logharbor.server.engine.store.clickhouse import ClickHouseStore, writer_id_for
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.gate import FairGate, QueryLimitError
from logharbor.server.engine.wal import WriteAheadLog
from logharbor.server.engine.wal.observe import WalCollector
from logharbor.server.errors import ApiError, api_error_handler, error_body, unexpected_error_handler
from logharbor.server.features.alerts.channels import HostPolicy
from logharbor.server.features.alerts.channels.secrets import SecretBox
from logharbor.server.features.alerts.evaluator import Job
from logharbor.server.features.alerts.routes import alerts_router
from logharbor.server.features.alerts.service import start_alerting
from logharbor.server.features.dashboards.routes import dashboards_router
from logharbor.server.features.explain import explain_router
from logharbor.server.features.health.recorded import start_recording
from logharbor.server.features.health.routes import recorded_router, services_router
from logharbor.server.features.health.services import ServiceRecorder
from logharbor.server.features.keys.routes import keys_router
from logharbor.server.features.loki.routes import loki_router
from logharbor.server.features.patterns.upkeep import PatternUpkeep
from logharbor.server.features.query.limits import set_max_clauses
from logharbor.server.features.query.routes import query_router
from logharbor.server.features.retention import (
    LocalState,
    Retention,
    StorageCollector,
    build_retention,
    retention_router,
)
from logharbor.server.features.tail.feed import TailFeed
from logharbor.server.features.tail.hub import TailHub
from logharbor.server.features.tail.routes import tail_router
from logharbor.server.features.traces.clock import ClockOffsets, OffsetsCollector
from logharbor.server.features.traces.routes import clock_router, traces_router
from logharbor.server.filemodes import private_umask, tighten
from logharbor.server.ingest import decoder
from logharbor.server.ingest.base import (
    Backpressure,
    Ingestor,
    IngestProtocol,
    RecordLimits,
    backpressure_handler,
)
from logharbor.server.ingest.elasticsearch import ElasticsearchIngest
from logharbor.server.ingest.forward import ForwardIngest
from logharbor.server.ingest.hotroutes import Endpoint, HotRoutes
from logharbor.server.ingest.idempotency import KeyIndex
from logharbor.server.ingest.loki import LokiIngest
from logharbor.server.ingest.native import NativeIngest
from logharbor.server.ingest.otlp import OtlpIngest
from logharbor.server.ingest.syslog import SyslogIngest, SyslogZones
from logharbor.server.leader import Leader
from logharbor.server.limits import RequestLimits, store_limit_handler
from logharbor.server.meta.db import MetaDamaged, MetaStore, MetaUnreachable
from logharbor.server.meta.keys import KeyStore
from logharbor.server.metrics import ServerMetrics
from logharbor.server.ondisk import refuse_newer_files
from logharbor.server.probes import health_router
from logharbor.server.ui import ui_router

__all__ = ["Runtime", "create_app"]

log = logging.getLogger("logharbor.server")


@dataclass
class Runtime:
    """The long-lived parts of one server, reachable from routes as ``request.app.state.runtime``."""

    config: ServerConfig
    store: Store
    wal: WriteAheadLog
    batcher: Batcher
    ingestor: Ingestor
    metrics: ServerMetrics
    meta: MetaStore
    keys: KeyStore
    #: seals channel secrets in the metadata database (the at-rest key, else DATA/secrets.key)
    secrets: SecretBox
    #: which hosts alert channels may reach (--channel-allow-hosts / --channel-deny-hosts)
    channel_hosts: HostPolicy
    #: tiers, mover, delete jobs and the disk guard (whose refusal the ingestor asks); not started
    retention: Retention
    #: which server runs the singletons (alert evaluation, retention moves) among those sharing meta
    leader: Leader | None = None

    def live_values(self) -> dict[str, float]:
        stats = self.store.stats()
        return {
            "logharbor_wal_bytes": float(self.wal.backlog_bytes()),
            "logharbor_store_rows": float(stats.rows),
            "logharbor_store_bytes_on_disk": float(stats.bytes_on_disk),
            "logharbor_store_bytes_uncompressed": float(stats.bytes_uncompressed),
        }


def open_store(config: ServerConfig, sealer: Sealer | None = None) -> Store:
    """The store named by ``config.store``; its reads are shared fairly between keys (store/gate.py)."""
    gate = FairGate(config.query_concurrency, per_owner=config.query_per_key_concurrency,
                    max_waiting=config.query_per_key_queue)
    if config.store == "embedded":
        return EmbeddedStore(config.store_dir, table=config.table, sealer=sealer,
                             readers=config.query_concurrency, gate=gate,
                             index_cache_bytes=config.query_index_cache_bytes)
    if config.store.startswith(("clickhouse://", "clickhouses://")):
        return ClickHouseStore(config.store, table=config.table, writer_id=writer_id_for(config.data_dir),
                               gate=gate)
    raise ValueError(f"store {config.store!r} is not supported (use 'embedded' or clickhouse://…)")


def bootstrap_admin_key(config: ServerConfig, keys: KeyStore) -> Path | None:
    """On first start, create an admin key and write it to a file only the owner can read."""
    path = config.data_dir / "admin.key"
    if keys.count_active_admins() > 0:
        return None
    new = keys.create(role="admin", name="bootstrap admin")
    write_atomic(path, (new.secret + "\n").encode(), mode=0o600)
    return path


def private_data_dir(config: ServerConfig) -> None:
    """Files this process creates from now on are 0600 (directories 0700), and what an older
    release left readable by others under the data directory (and a local cold tier) is tightened."""
    private_umask()
    config.data_dir.mkdir(parents=True, exist_ok=True)
    tighten(config.data_dir)
    if "://" not in config.cold_storage:
        cold = config.data_dir / config.cold_storage  # an absolute folder stays itself
        if cold.exists() and not cold.resolve().is_relative_to(config.data_dir.resolve()):
            tighten(cold)


def build_runtime(config: ServerConfig) -> Runtime:
    """Open everything in order; the caller closes it with :func:`close_runtime`."""
    private_umask()  # what is created from here on is private (a new data dir too)
    sealer = Sealer.from_file(config.encryption_key_file) if config.encryption_key_file else None
    meta = MetaStore.for_data_dir(config.data_dir, config.meta_url)
    refuse_newer_files(config, meta, sealer)  # before the first write: a refusal changes nothing
    private_data_dir(config)
    meta.create()
    keys = KeyStore(meta)
    key_file = bootstrap_admin_key(config, keys)
    if key_file is not None:
        log.warning("created the first admin API key; it is in %s (readable by this user only)", key_file)
        print(f"logharbor: first start: admin API key written to {key_file}", flush=True)
    metrics = ServerMetrics()
    secrets = SecretBox.for_server(config.data_dir, sealer, config.secrets_key_file)
    channel_hosts = HostPolicy.from_lists(config.channel_allow_hosts, config.channel_deny_hosts)
    store = open_store(config, sealer)
    store.open()
    # the keys of retried batches: rebuilt from the WAL's entries and the file that keeps the keys
    # of deleted segments (which the WAL hands it before deleting a segment)
    recent = KeyIndex(config.data_dir / "idempotency.keys", window_s=config.idempotency_window_s,
                      max_keys=config.idempotency_max_keys)
    wal = WriteAheadLog(config.wal_dir, segment_bytes=config.wal_segment_bytes,
                        max_bytes=config.wal_max_bytes, fsync=config.wal_fsync, sealer=sealer,
                        before_remove=recent.persist if recent.enabled else None)
    wal.open(min_next_seq=Batcher.stored_seq(config.data_dir / "batcher.json") + 1)
    if recent.enabled:
        recent.load(wal.iter_keys())  # before the batcher starts: nothing is released yet
    miner = PatternMiner(config.data_dir / "patterns", max_sids=4 * config.patterns_max_clusters,
                         max_services=config.patterns_max_services, sealer=sealer) \
        if config.patterns else None
    decoder.set_patterns(config.patterns)
    log.info("ingest decoder: %s (%s)", decoder.PATH, decoder.REASON)
    set_max_clauses(config.query_max_clauses)
    free = (lambda: free_bytes(config.store_dir)) if isinstance(store, EmbeddedStore) else None
    batcher = Batcher(wal, store, config.data_dir / "batcher.json",
                      max_batch_bytes=config.batch_max_bytes, max_age_s=config.batch_max_age_s,
                      on_batch=metrics.observe_batch, paused=config.batcher_paused, miner=miner,
                      free_space=free)
    batcher.start()
    leader = Leader(config.meta_url)
    ServiceRecorder(store).ensure()  # every table exists before the schema freezes
    # tiers first: the store's read table becomes hot ∪ warm ∪ cold before anyone compiles
    retention = build_retention(
        store, meta, config.data_dir, cold_storage=config.cold_storage, cold_endpoint=config.cold_endpoint,
        interval_s=config.retention_interval_s, disk_max_bytes=config.disk_max_bytes,
        disk_min_free_bytes=config.disk_min_free_bytes, audit=keys.audit, local=LocalState(wal, batcher),
        leader=leader)  # moves and deletes run on the leader only
    ingestor = Ingestor(wal, on_accept=metrics.count_ingest, retry_after_s=config.retry_after_s,
                        workers=config.ingest_workers, limiter=RateLimiter(config.ingest_rate_per_key),
                        patterns=config.patterns, keys=recent, refusal=retention.guard.refusal,
                        worker_init=decoder.set_patterns, decode=config.ingest_decode,
                        releases_gil=getattr(decoder, "RELEASES_GIL", False))
    log.info("%s", ingestor.decoding.describe())
    runtime = Runtime(config, store, wal, batcher, ingestor, metrics, meta, keys, secrets, channel_hosts,
                      retention, leader)
    metrics.watch(runtime.live_values)
    metrics.decoder(decoder.PATH, decoder.REASON)
    metrics.decode_mode(ingestor.decoding.gil_free_in, ingestor.decoding.others_in, ingestor.decoding.reason)
    metrics.watch(ingestor.decoding.gauges)
    metrics.watch(lambda: {"logharbor_idempotency_keys": float(len(recent)),
                           "logharbor_idempotent_replays": float(recent.replays),
                           "logharbor_bulk_duplicate_ids": float(recent.duplicate_docs)})
    metrics.registry.register(WalCollector(wal))
    metrics.watch(batcher.refused.gauges)
    metrics.watch(store.gate.gauges)
    if miner is not None:
        metrics.watch(miner.gauges)
    metrics.watch(lambda: {"logharbor_leader": float(runtime.leader.is_leader) if runtime.leader else 0.0})
    return runtime


def start_pattern_upkeep(runtime: Runtime) -> PatternUpkeep | None:
    """Adopt the ids an earlier release stored and backfill records stored before patterns, in the
    background (server/features/patterns/upkeep.py); on the leader when servers share a store."""
    if runtime.batcher.miner is None:
        return None
    upkeep = PatternUpkeep(runtime.store, runtime.batcher,
                           rows_per_s=runtime.config.patterns_backfill_rows_per_s, leader=runtime.leader)
    runtime.metrics.watch(upkeep.gauges)
    upkeep.start()
    return upkeep


def close_runtime(runtime: Runtime, *, deadline: float | None = None) -> None:
    """Stop accepting, move everything durable to the store (until ``deadline``, a
    ``time.monotonic()`` value; by default the configured shutdown timeout from now), then close
    in reverse order. What the deadline leaves in the WAL is logged; the next start replays it."""
    if deadline is None:
        deadline = time.monotonic() + runtime.config.shutdown_timeout_s
    runtime.batcher.begin_flush()
    runtime.ingestor.close()
    runtime.wal.close()
    stopped = runtime.batcher.stop(drain=True, timeout=max(0.0, deadline - time.monotonic()))
    if stopped or runtime.batcher.caught_up():
        runtime.store.close()  # (not under an insert still running: the process ends anyway)
    if runtime.leader is not None:
        runtime.leader.release()  # a follower's session too (the leader's was released by alerts)
    runtime.meta.close()


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """400 naming the bad fields; a path that names no possible resource (an id that is not a
    number, or out of its range) is a 404, as for any other id that does not exist."""
    assert isinstance(exc, RequestValidationError)
    detail = [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()]
    where = "; ".join(f"{'.'.join(str(p) for p in d['loc'])}: {d['msg']}" for d in detail[:5])
    if detail and all(d["loc"][:1] == ["path"] for d in detail):
        return JSONResponse(error_body("not_found", f"no such resource: {where}", detail), status_code=404)
    return JSONResponse(error_body("invalid_request", f"invalid request: {where}", detail),
                        status_code=400)


def create_app(config: ServerConfig) -> FastAPI:
    """The ASGI app for ``config``; the runtime opens in the lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            runtime = build_runtime(config)
        except (StoreError, MetaDamaged, MetaUnreachable, DamagedProgress, NewerFormat) as exc:  # named
            log.error("logharbor server cannot start: %s", exc)
            print(f"logharbor server: cannot start: {exc}", file=sys.stderr, flush=True)
            app.state.start_error = exc  # said in one line: run_server keeps the traceback out
            raise
        app.state.runtime = runtime
        # a read waiting for a query slot waits in a worker thread: room for sixteen keys' full
        # queues beside everything else, so waiting queries never starve the thread pool
        threads = anyio.to_thread.current_default_thread_limiter()
        threads.total_tokens = max(threads.total_tokens, 40 + config.query_concurrency + 16 * (
            config.query_per_key_concurrency + config.query_per_key_queue))
        clock = app.state.clock_offsets = ClockOffsets(runtime.store,
                                                       window_ns=round(config.clock_window_s * 1e9))
        clock.ensure()
        runtime.metrics.registry.register(OffsetsCollector(clock))
        retention = app.state.retention = runtime.retention
        runtime.metrics.registry.register(StorageCollector(retention))
        retention.start()
        upkeep = start_pattern_upkeep(runtime)
        app.state.store = runtime.store
        tail = app.state.tail_hub = TailHub(runtime.store, max_clients=config.tail_max_clients,
                                            max_pending_bytes=config.tail_max_pending_bytes,
                                            round_timeout_s=config.query_timeout_s)
        alerts = None
        # servers sharing a ClickHouse store: tail also what the others ingested (features/tail/feed.py)
        feed = TailFeed(runtime.store, tail, settle_s=config.batch_max_age_s + 1.0) \
            if isinstance(runtime.store, ClickHouseStore) else None
        try:
            await tail.start()
            # rules, channels, dashboards, services; and the clock offsets from the requests, every
            # clock_interval_s on the alert scheduler (the leader's), which clock_skew rules read
            alerts = await start_alerting(
                app.state, runtime,
                jobs=(Job("clock-offsets", round(config.clock_interval_s * 1e9), clock.record),),
                clock_table=clock.table)
            recorder = start_recording(app.state, runtime)  # recording rules, on the alert scheduler
            retention.deletes.forget.append(recorder.forget)  # a delete drops the groups it erased
            runtime.ingestor.add_listener(tail.publish)
            if feed is not None:
                runtime.ingestor.add_listener(feed.note_local)
                await feed.start()
            runtime.metrics.watch(tail.live_values)
            for listener in listeners:  # syslog / forward sockets
                listener.on_refused = runtime.metrics.count_refused
                await listener.start(runtime.ingestor)
            runtime.store.freeze_schema()  # no table is created later
            yield
        finally:
            # shutdown: the batcher flushes now (no waiting for the batch age), within the deadline
            deadline = time.monotonic() + config.shutdown_timeout_s
            runtime.batcher.begin_flush()
            # the syslog / forward sockets write what their peers already sent (half the deadline,
            # at most 10 s: the rest is for the batcher to store it)
            read_until = time.monotonic() + min(10.0, config.shutdown_timeout_s / 2)
            await asyncio.gather(*(listener.stop(read_until) for listener in listeners))
            if feed is not None:
                await feed.stop()
            await tail.stop()
            if alerts is not None:
                await alerts.stop()
            retention.stop()
            if upkeep is not None:
                upkeep.stop()
            close_runtime(runtime, deadline=deadline)

    app = FastAPI(title="logharbor", version=__version__, lifespan=lifespan,
                  docs_url=None, openapi_url="/api/openapi.json", redoc_url=None)
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(Backpressure, backpressure_handler)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for limit_error in (QueryLimitError, QueryCancelled):  # a query limit no route caught: still a 4xx
        app.add_exception_handler(limit_error, store_limit_handler)
    # ENOSPC from SQLite or a state file → 507, a busy metadata database → 503, never a bare 500
    for kind in (OSError, SQLAlchemyError, StoreError, Exception):
        app.add_exception_handler(kind, unexpected_error_handler)

    def current_keys() -> KeyStore | None:
        runtime = getattr(app.state, "runtime", None)
        return runtime.keys if runtime is not None else None

    app.add_middleware(AuthMiddleware, keys=current_keys, metrics_public=config.metrics_public,
                       enabled=config.auth)
    # gzip for the clients that accept it, never for streams (compression.py); 401s included
    app.add_middleware(ResponseCompression)
    # outermost: the body limit, the query budget and HSTS hold for every request, refused ones too
    app.add_middleware(RequestLimits, max_body_bytes=config.max_body_bytes,
                       max_request_bytes=config.max_request_bytes, query_timeout_s=config.query_timeout_s,
                       hsts_max_age_s=config.hsts_max_age_s if config.tls_cert else None)
    if config.api_docs:
        app.include_router(api_docs_router())
    app.include_router(health_router())
    app.include_router(keys_router())
    app.include_router(query_router())
    app.include_router(explain_router())
    app.include_router(traces_router())
    app.include_router(clock_router())
    app.include_router(tail_router())
    app.include_router(alerts_router())
    app.include_router(dashboards_router())
    app.include_router(services_router())
    app.include_router(loki_router())  # GET /loki/api/v1/…, /ready
    app.include_router(recorded_router())
    app.include_router(retention_router())
    app.include_router(ui_router())  # before the ES routes, whose /{index} paths would match /ui

    protocols = ingest_protocols(config)
    listeners = [p for p in protocols if isinstance(p, SyslogIngest | ForwardIngest) and p.enabled]
    for protocol in protocols:
        app.include_router(protocol.router())
    # the busiest ingest endpoints by one lookup instead of the router's scan of every route, inside
    # the same middleware and exception handlers (ingest/hotroutes.py)
    app.router.middleware_stack = HotRoutes(app.router.middleware_stack, hot_ingest_routes(protocols))
    return app


def hot_ingest_routes(protocols: list[IngestProtocol]) -> dict[tuple[str, str], Endpoint]:
    """The ingest endpoints that take the request alone (no path or query parameters), by method
    and exact path: native NDJSON, Loki push, OTLP/HTTP."""
    routes: dict[tuple[str, str], Endpoint] = {}
    for protocol in protocols:
        if isinstance(protocol, NativeIngest):
            routes[("POST", "/api/v1/logs")] = protocol.ingest
        elif isinstance(protocol, LokiIngest):
            routes[("POST", "/loki/api/v1/push")] = protocol.push
        elif isinstance(protocol, OtlpIngest):
            routes[("POST", "/v1/logs")] = protocol.export
    return routes


def ingest_protocols(config: ServerConfig) -> list[IngestProtocol]:
    """The HTTP ingest protocols this server speaks (one line per protocol)."""
    limits = RecordLimits(max_line_bytes=config.max_line_bytes, max_fields=config.max_fields_per_record,
                          max_field_bytes=config.max_field_bytes, max_depth=config.max_record_depth)
    listen_cert = config.listener_tls_cert or config.tls_cert
    listen_key = config.listener_tls_key or config.tls_key
    return [
        NativeIngest(max_body_bytes=config.max_body_bytes, limits=limits,
                     max_records=config.max_records_per_request),
        ElasticsearchIngest(max_body_bytes=config.max_body_bytes, limits=limits,
                            max_records=config.max_records_per_request),
        LokiIngest(max_body_bytes=config.max_body_bytes, limits=limits),
        OtlpIngest(max_body_bytes=config.max_body_bytes, limits=limits),
        SyslogIngest(udp=config.syslog_udp, tcp=config.syslog_tcp, tls=config.syslog_tls,
                     tls_cert=listen_cert, tls_key=listen_key, allow=config.listener_allow, limits=limits,
                     timezone=SyslogZones.parse(config.syslog_timezone, config.syslog_timezones),
                     max_connections=config.listener_max_connections),
        ForwardIngest(address=config.forward, tls=config.forward_tls, tls_cert=listen_cert,
                      tls_key=listen_key, shared_key=config.forward_shared_key,
                      allow=config.listener_allow, limits=limits, max_bytes=config.max_body_bytes,
                      max_connections=config.listener_max_connections),
    ]
