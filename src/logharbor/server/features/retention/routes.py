"""HTTP API of retention: rules, preview, delete by query with progress, storage figures."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from logharbor.server.auth import actor_of, principal_of
from logharbor.server.errors import ApiError
from logharbor.server.features.query import QueryError
from logharbor.server.features.retention.delete import DeleteUnsupported
from logharbor.server.features.retention.rules import RetentionPolicy
from logharbor.server.features.retention.service import Retention

__all__ = ["retention_router"]


class DeleteRequest(BaseModel):
    """``{"q": "user_id:u-123"}``: a filter in the query language (no pipes but ``where``)."""

    model_config = ConfigDict(extra="forbid")
    q: str = Field(min_length=1, max_length=10_000)


def _retention(request: Request) -> Retention:
    retention = getattr(request.app.state, "retention", None)
    if retention is None:
        raise ApiError(503, "unavailable", "retention is not running")
    return retention


def _policy(body: dict[str, Any]) -> RetentionPolicy:
    try:
        return RetentionPolicy.model_validate(body)
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise ApiError(400, "invalid_rules", f"invalid retention rules: {where}") from None


def retention_router() -> APIRouter:
    """``/api/v1/retention``, ``/api/v1/retention/preview``, ``/api/v1/delete``, ``/api/v1/storage``."""
    router = APIRouter(tags=["retention"])

    @router.get("/api/v1/retention", summary="The retention rules and the mover's state")
    async def get_rules(request: Request) -> dict[str, Any]:
        return _retention(request).state()

    @router.put("/api/v1/retention", summary="Replace the retention rules")
    async def put_rules(body: dict[str, Any], request: Request) -> dict[str, Any]:
        retention = _retention(request)
        policy = _policy(body)
        actor = actor_of(request)
        await run_in_threadpool(retention.mover.save_policy, policy, actor)
        request.app.state.runtime.keys.audit(actor, "retention.update", None,
                                             detail=f"{len(policy.rules)} rules")
        return policy.model_dump(mode="json", exclude_none=True)

    @router.post("/api/v1/retention/preview",
                 summary="What the next run would move or delete, per rule (the given or current rules)")
    async def preview(request: Request, body: dict[str, Any] | None = None) -> dict[str, Any]:
        retention = _retention(request)
        policy = _policy(body) if body else retention.mover.policy
        rules = await run_in_threadpool(retention.preview, policy)
        return {"rules": rules}

    @router.post("/api/v1/retention/run", summary="Run the mover once now (instead of waiting)")
    async def run_now(request: Request) -> dict[str, Any]:
        retention = _retention(request)
        done = await run_in_threadpool(retention.mover.tick)
        request.app.state.runtime.keys.audit(actor_of(request), "retention.run", None,
                                             detail=str(done))
        return done

    @router.post("/api/v1/delete", status_code=202, summary="Delete every record matching a filter")
    async def delete(body: DeleteRequest, request: Request) -> dict[str, Any]:
        retention = _retention(request)
        try:
            scope = getattr(request.state, "query_scope", None)
            return await run_in_threadpool(retention.deletes.submit, body.q, actor_of(request),
                                           scope)
        except QueryError as exc:
            raise ApiError(400, "invalid_query", str(exc)) from None
        except DeleteUnsupported as exc:
            raise ApiError(501, "not_implemented", str(exc)) from None
        except ValueError as exc:
            raise ApiError(400, "invalid_request", str(exc)) from None

    @router.get("/api/v1/delete/{job_id}", summary="Progress of a delete")
    async def delete_status(job_id: str, request: Request) -> dict[str, Any]:
        retention = _retention(request)
        principal = principal_of(request)
        viewer = principal.scope if principal is not None and principal.scoped else None
        job = await run_in_threadpool(retention.delete_job, job_id, viewer)
        if job is None:
            raise ApiError(404, "not_found", f"no delete job {job_id!r}")
        return job

    @router.get("/api/v1/storage", summary="Bytes and records per tier, service and level")
    async def storage(request: Request) -> dict[str, Any]:
        retention = _retention(request)
        return await run_in_threadpool(retention.storage_within, getattr(request.state, "query_scope", None))

    return router
