"""The HTTP API of dashboards and saved queries: the CRUD routes of each, a dashboard's export and
import (``service.py`` keeps the documents, their models and the reference dashboard).

A body is validated by the document's model (a 400 naming each bad field); a name another scope
holds, or one a create would replace, is a 409.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from logharbor.server.auth import actor_of, viewer_of
from logharbor.server.errors import ApiError
from logharbor.server.features.alerts.rules import validation_message
from logharbor.server.scopes import Scope

from .service import EXPORT_FORMAT, DashboardStore, NameTaken

__all__ = ["dashboards_router"]


def _validate(store: DashboardStore, data: Any) -> BaseModel:
    """The model of a request body, or a 400 naming each bad field."""
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_request", "the body is a JSON object")
    try:
        return store.model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, "invalid_request", validation_message(exc)) from None


async def _put(store: DashboardStore, item: BaseModel, *, replace: bool = True, owner: Scope) -> bool:
    """:meth:`DashboardStore.put` off the event loop; a taken name is a 409."""
    try:
        return await run_in_threadpool(lambda: store.put(item, replace=replace, owner=owner))
    except NameTaken as exc:
        raise ApiError(409, "exists", str(exc)) from None


async def _audit(request: Request, action: str, name: str) -> None:
    await run_in_threadpool(request.app.state.runtime.keys.audit, actor_of(request), action, name[:200])


def _crud(router: APIRouter, prefix: str, attr: str, what: str) -> None:
    """The five CRUD routes of one kind of document."""

    def store(request: Request) -> DashboardStore:
        return getattr(request.app.state, attr)  # type: ignore[no-any-return]

    @router.get(prefix, summary=f"List {what}s")
    async def list_all(request: Request) -> dict[str, Any]:
        return {"items": await run_in_threadpool(store(request).list, viewer_of(request))}

    @router.post(prefix, status_code=201, summary=f"Create a {what}")
    async def create(request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        item = _validate(store(request), body)
        await _put(store(request), item, replace=False, owner=viewer_of(request))
        await _audit(request, f"{what.replace(' ', '_')}.create", body["name"])
        return await run_in_threadpool(store(request).get, body["name"]) or {}

    @router.get(prefix + "/{name}", summary=f"One {what}")
    async def get_one(name: str, request: Request) -> dict[str, Any]:
        row = await run_in_threadpool(store(request).get, name, viewer_of(request))
        if row is None:
            raise ApiError(404, "not_found", f"no {what} named {name!r}")
        return row

    @router.put(prefix + "/{name}", summary=f"Create or replace a {what}")
    async def put_one(name: str, request: Request, body: dict[str, Any] = Body(...)) -> JSONResponse:
        body.setdefault("name", name)
        if body["name"] != name:
            raise ApiError(400, "invalid_request", f"name: the body says {body['name']!r}, the path {name!r}")
        item = _validate(store(request), body)
        created = await _put(store(request), item, owner=viewer_of(request))
        await _audit(request, f"{what.replace(' ', '_')}.{'create' if created else 'update'}", name)
        row = await run_in_threadpool(store(request).get, name)
        return JSONResponse(row, status_code=201 if created else 200)

    @router.delete(prefix + "/{name}", summary=f"Delete a {what}")
    async def delete_one(name: str, request: Request) -> dict[str, Any]:
        if not await run_in_threadpool(store(request).delete, name, viewer_of(request)):
            raise ApiError(404, "not_found", f"no {what} named {name!r}")
        await _audit(request, f"{what.replace(' ', '_')}.delete", name)
        return {"deleted": name}


def dashboards_router() -> APIRouter:
    """The router the app factory mounts (``app.state.dashboards`` / ``saved_queries`` are set by
    :func:`~.service.open_dashboards`)."""
    router = APIRouter(tags=["dashboards"])

    @router.get("/api/v1/dashboards/{name}/export", summary="A dashboard as a JSON document to import")
    async def export(name: str, request: Request) -> dict[str, Any]:
        row = await run_in_threadpool(request.app.state.dashboards.get, name, viewer_of(request))
        if row is None:
            raise ApiError(404, "not_found", f"no dashboard named {name!r}")
        spec = {k: v for k, v in row.items() if k not in ("created_ns", "updated_ns", "scope")}
        return {"format": EXPORT_FORMAT, "dashboard": spec}

    @router.post("/api/v1/dashboards/import", status_code=201, summary="Import an exported dashboard")
    async def import_(request: Request, body: dict[str, Any] = Body(...),
                      overwrite: bool = False) -> JSONResponse:
        if body.get("format") != EXPORT_FORMAT or not isinstance(body.get("dashboard"), dict):
            raise ApiError(400, "invalid_request", f"not a dashboard export (format {EXPORT_FORMAT!r})")
        store: DashboardStore = request.app.state.dashboards
        item = _validate(store, body["dashboard"])
        created = await _put(store, item, replace=overwrite, owner=viewer_of(request))
        await _audit(request, "dashboard.import", body["dashboard"]["name"])
        return JSONResponse(await run_in_threadpool(store.get, body["dashboard"]["name"]),
                            status_code=201 if created else 200)

    _crud(router, "/api/v1/dashboards", "dashboards", "dashboard")
    _crud(router, "/api/v1/saved-queries", "saved_queries", "saved query")
    return router
