"""Probes and metrics: ``/healthz`` (the process answers), ``/readyz`` (it can take and keep data),
``/metrics`` (Prometheus text format)."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from logharbor import __version__
from logharbor.server.wal.observe import wal_damage

__all__ = ["health_router"]


def health_router() -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness probe")
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @router.get("/readyz", summary="Readiness probe")
    async def readyz(request: Request) -> JSONResponse:
        runtime = request.app.state.runtime
        checks = {
            "wal": "ok" if runtime.wal.backlog_bytes() < runtime.config.wal_max_bytes else "full",
            "store": "ok" if runtime.batcher.last_error is None else "failing",
        }
        ready = all(v == "ok" for v in checks.values())
        detail = {"status": "ready" if ready else "not ready", "checks": checks}
        if runtime.batcher.last_error:
            detail["store_error"] = runtime.batcher.last_error[:500]
        damage = wal_damage(runtime.wal)
        if damage is not None:  # reported, not a reason to refuse traffic (see server/wal/observe.py)
            detail["wal_damage"] = damage
        return JSONResponse(detail, status_code=200 if ready else 503)

    @router.get("/metrics", summary="Prometheus metrics")
    async def metrics(request: Request) -> Response:
        registry = request.app.state.runtime.metrics.registry
        body = await run_in_threadpool(generate_latest, registry)  # reads store stats: not on the loop
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router
