"""Probes and metrics: ``/healthz`` (the process answers), ``/readyz`` (it can take and keep data),
``/metrics`` (Prometheus text format)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from logharbor import __version__
from logharbor.server.diskspace import free_bytes
from logharbor.server.engine.wal.observe import wal_damage
from logharbor.types import JsonObject

__all__ = ["health_router", "readiness"]

#: after the WAL was refused for lack of space, this much free space makes the server ready again
NO_SPACE_CLEAR_BYTES = 8 * 1024 * 1024


def readiness(state: Any) -> JsonObject:
    """What ``/readyz`` answers: each check ``ok`` or why not, and the reasons in words.

    Not ready while the WAL is over its limit (``wal: full``), was refused for lack of disk
    recently and the disk has not got room back (``wal: no_space``), the store's inserts fail
    (``store: failing``, or ``no_space`` for a full disk), or the disk guard rejects ingest
    (``disk: low``). Ready again by itself once the cause is gone.
    """
    runtime = state.runtime
    checks: dict[str, str] = {}
    reasons: list[str] = []
    body: JsonObject = {}
    wal_dir = runtime.config.wal_dir
    free = free_bytes(wal_dir)
    if free is not None:
        body["disk_free_bytes"] = free
    if runtime.wal.backlog_bytes() >= runtime.config.wal_max_bytes:
        checks["wal"] = "full"
        reasons.append("the write-ahead log is over its size limit (ingest answers 429)")
    elif runtime.ingestor.no_space_at is not None and (free is None or free < NO_SPACE_CLEAR_BYTES):
        checks["wal"] = "no_space"
        reasons.append(f"the disk under {wal_dir} is full: the write-ahead log refused writes "
                       "(ingest answers 507)")
    else:
        checks["wal"] = "ok"
    batcher = runtime.batcher
    if batcher.last_error is None:
        checks["store"] = "ok"
    else:
        checks["store"] = "no_space" if batcher.no_space else "failing"
        body["store_error"] = batcher.last_error[:500]
        body["store_failures"] = batcher.failures
        reasons.append(("the store's disk is full: " if batcher.no_space else "store writes fail: ")
                       + "batches stay in the WAL and are retried")
    retention = getattr(state, "retention", None)
    guard = getattr(retention, "guard", None)
    if guard is not None and guard.rejecting:
        checks["disk"] = "low"
        reasons.append(f"the disk guard rejects ingest ({guard.free_bytes} bytes free, "
                       f"{guard.used_bytes} used; ingest answers 429)")
    else:
        checks["disk"] = "ok"
    refused = batcher.refused.summary()
    if refused is not None:  # reported like WAL damage: the rest is stored, ingest goes on
        body["refused_rows"] = refused
    damage = wal_damage(runtime.wal)
    if damage is not None:  # reported, not a reason to refuse traffic (see server/engine/wal/observe.py)
        body["wal_damage"] = damage
    ready = all(v == "ok" for v in checks.values())
    return {"status": "ready" if ready else "not ready", "checks": checks,
            **({"reasons": reasons} if reasons else {}), **body}


def health_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness probe")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @router.get("/readyz", summary="Readiness probe")
    async def readyz(request: Request) -> JSONResponse:
        body = await run_in_threadpool(readiness, request.app.state)
        return JSONResponse(body, status_code=200 if body["status"] == "ready" else 503)

    @router.get("/metrics", summary="Prometheus metrics")
    async def metrics(request: Request) -> Response:
        registry = request.app.state.runtime.metrics.registry
        body = await run_in_threadpool(generate_latest, registry)  # reads store stats: not on the loop
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router
