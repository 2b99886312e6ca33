"""The alerting API: rules, alert states and history, channels (with a test send) and silences.

Writes need an admin key and go to the audit log; reads need a reader key (see ``auth._RULES``).
Every body is validated by the same models the evaluator uses, and a bad rule is a 400 whose
message names the field and the reason (``condition: a ratio threshold is between 0 and 1``).
Rules, channels and silences carry the scope of the key that made them; a key sees (and changes)
only those its scope covers (docs/security.md). Channel secrets are never returned.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse

from logharbor.models import InputModel
from logharbor.server.auth import actor_of, viewer_of
from logharbor.server.bounds import RowId
from logharbor.server.engine.store.base import StoreError
from logharbor.server.errors import ApiError
from logharbor.server.features.query.timeparse import TimeParseError, parse_time_ns
from logharbor.server.limits import query_refusal
from logharbor.server.scopes import Scope

from .catalog import CatalogError
from .channels import Blocked, DeliveryError
from .channels.secrets import SecretsUnreadable
from .rules import Rule, field_errors, validation_message
from .service import AlertService
from .silences import SilenceCreate

__all__ = ["alerts_router", "parse_rule"]


class ChannelBody(BaseModel):
    """A channel: a unique name, a kind (``email``, ``webhook``) and that kind's settings."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    kind: str
    config: dict[str, Any]


class TestBody(InputModel):
    """A dry run of a stored rule (``name``) or of a rule not saved yet (``rule``)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    rule: dict[str, Any] | None = None
    # bool: kept a bool (pydantic made JSON true the int 1) so parse_time_ns refuses it (400)
    at: str | bool | int | None = Field(None, description="evaluate as of this time (default now)")


def parse_rule(data: Any) -> Rule:
    """A rule from a request body, or a 400 that says what is wrong."""
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_rule", "a rule is a JSON object")
    try:
        return Rule.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, "invalid_rule", validation_message(exc),
                       detail={"fields": field_errors(exc)}) from None


def _rule_field_error(status: int, code: str, field: str, message: str) -> ApiError:
    """A refusal about one field of a rule: ``detail.fields`` names it, as a validation error does."""
    return ApiError(status, code, message,
                    detail={"fields": [{"field": field, "message": message.removeprefix(f"{field}: ")}]})


def _service(request: Request) -> AlertService:
    return request.app.state.alerts  # type: ignore[no-any-return]


async def _audit(request: Request, action: str, target: str, detail: str | None = None) -> None:
    keys = request.app.state.runtime.keys
    await run_in_threadpool(keys.audit, actor_of(request), action, target[:200], detail=detail)


def _catalog_error(exc: CatalogError) -> ApiError:
    if exc.message.startswith("channels: "):  # an unknown channel named in a rule
        return _rule_field_error(exc.status, exc.code, "channels", exc.message)
    return ApiError(exc.status, exc.code, exc.message)


def alerts_router() -> APIRouter:
    """The router the app factory mounts."""
    router = APIRouter(tags=["alerts"])

    # ---------------------------------------------------------------------------- rules

    @router.get("/api/v1/alerts/rules", summary="List alert rules with their evaluation status")
    async def list_rules(request: Request) -> dict[str, Any]:
        return {"rules": await run_in_threadpool(_service(request).catalog.list_rules, viewer_of(request))}

    @router.post("/api/v1/alerts/rules", status_code=201, summary="Create an alert rule")
    async def create_rule(request: Request, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        rule = parse_rule(body)
        service = _service(request)
        if await run_in_threadpool(service.catalog.get_rule, rule.name, viewer_of(request)) is not None:
            raise _rule_field_error(409, "exists", "name",
                                    f"a rule named {rule.name!r} exists; PUT it to replace it")
        return await _put(request, rule)

    async def _put(request: Request, rule: Rule) -> dict[str, Any]:
        service = _service(request)
        try:
            row, created = await run_in_threadpool(service.catalog.put_rule, rule, viewer_of(request))
        except CatalogError as exc:
            raise _catalog_error(exc) from None
        await _audit(request, "alert_rule.create" if created else "alert_rule.update", rule.name)
        service.evaluator.rules_changed()
        return {**row, "created": created}

    @router.get("/api/v1/alerts/rules/{name}", summary="One alert rule")
    async def get_rule(name: str, request: Request) -> dict[str, Any]:
        row = await run_in_threadpool(_service(request).catalog.get_rule, name, viewer_of(request))
        if row is None:
            raise ApiError(404, "not_found", f"no rule named {name!r}")
        return row

    @router.put("/api/v1/alerts/rules/{name}", summary="Create or replace an alert rule")
    async def put_rule(name: str, request: Request, body: dict[str, Any] = Body(...)) -> JSONResponse:
        if isinstance(body, dict):
            body.setdefault("name", name)
        rule = parse_rule(body)
        if rule.name != name:
            raise _rule_field_error(400, "invalid_rule", "name",
                                    f"name: the body says {rule.name!r}, the path {name!r}")
        out = await _put(request, rule)
        return JSONResponse(out, status_code=201 if out["created"] else 200)

    @router.delete("/api/v1/alerts/rules/{name}", summary="Delete an alert rule and its states")
    async def delete_rule(name: str, request: Request) -> dict[str, Any]:
        try:
            await run_in_threadpool(_service(request).catalog.delete_rule, name, viewer_of(request))
        except CatalogError as exc:
            raise _catalog_error(exc) from None
        await _audit(request, "alert_rule.delete", name)
        _service(request).evaluator.rules_changed()
        return {"deleted": name}

    @router.post("/api/v1/alerts/test", summary="Evaluate a rule now without changing any state")
    async def test_rule(request: Request, body: TestBody) -> dict[str, Any]:
        service = _service(request)
        if (body.name is None) == (body.rule is None):
            raise ApiError(400, "invalid_request", "give either 'name' (a stored rule) or 'rule'")
        scope = getattr(request.state, "query_scope", None)
        if body.name is not None:
            row = await run_in_threadpool(service.catalog.get_rule, body.name, viewer_of(request))
            if row is None:
                raise ApiError(404, "not_found", f"no rule named {body.name!r}")
            rule = parse_rule(row["spec"])
            scope = Scope.from_json(row["scope"]).sql()  # inside the caller's: it sees the rule
        else:
            rule = parse_rule(body.rule)
            if rule.channels:  # refused at save as at preview, so a form can say it before saving
                seen = await run_in_threadpool(service.catalog.list_channels, viewer_of(request))
                missing = [n for n in rule.channels if n not in {c["name"] for c in seen}]
                if missing:
                    raise _rule_field_error(400, "invalid_rule", "channels",
                                            f"channels: no channel named {', '.join(map(repr, missing))}")
        at_ns = service.clock.now_ns()
        if body.at is not None:
            try:
                at_ns = parse_time_ns(body.at, now_ns=at_ns)
            except TimeParseError as exc:
                raise ApiError(400, "invalid_time", f"'at': {exc}") from None
        began = time.perf_counter()
        try:
            groups = await run_in_threadpool(lambda: service.evaluator.dry_run(rule, at_ns, scope=scope))
        except StoreError as exc:
            raise query_refusal(exc) or _rule_field_error(
                400, "evaluation_failed", "query", f"the rule's query failed: {str(exc)[:300]}") from None
        return {"rule": rule.name, "condition": rule.condition.text(), "at_ns": at_ns,
                "firing": any(g["active"] for g in groups), "groups": groups,
                "elapsed_ms": round((time.perf_counter() - began) * 1000, 3)}

    # ---------------------------------------------------------------------------- alerts

    @router.get("/api/v1/alerts", summary="Current alert states (pending, firing, resolved)")
    async def list_alerts(request: Request, all: bool = False) -> dict[str, Any]:
        catalog, viewer = _service(request).catalog, viewer_of(request)
        return {"alerts": await run_in_threadpool(
            lambda: catalog.alerts(include_inactive=all, viewer=viewer))}

    @router.get("/api/v1/alerts/history", summary="State transitions, newest first")
    async def history(request: Request, rule: str | None = None, limit: int = 200) -> dict[str, Any]:
        limit = max(1, min(limit, 10_000))
        catalog, viewer = _service(request).catalog, viewer_of(request)
        rows, truncated = await run_in_threadpool(
            lambda: catalog.history_page(rule=rule, limit=limit, viewer=viewer))
        return {"history": rows, "truncated": truncated}

    @router.get("/api/v1/alerts/notifications", summary="Notifications sent, pending, silenced or failed")
    async def notifications(request: Request, rule: str | None = None, limit: int = 100) -> dict[str, Any]:
        limit = max(1, min(limit, 10_000))
        catalog, viewer = _service(request).catalog, viewer_of(request)
        return {"notifications": await run_in_threadpool(
            lambda: catalog.notifications(rule=rule, limit=limit, viewer=viewer))}

    # ---------------------------------------------------------------------------- channels

    @router.get("/api/v1/channels", summary="List notification channels (never their secrets)")
    async def list_channels(request: Request) -> dict[str, Any]:
        return {"channels": await run_in_threadpool(_service(request).catalog.list_channels,
                                                    viewer_of(request))}

    async def _put_channel(request: Request, name: str, body: ChannelBody) -> tuple[dict[str, Any], bool]:
        try:
            row, created = await run_in_threadpool(_service(request).catalog.put_channel, name, body.kind,
                                                   dict(body.config), viewer_of(request))
        except CatalogError as exc:
            raise _catalog_error(exc) from None
        await _audit(request, "channel.create" if created else "channel.update", name, detail=body.kind)
        return row, created

    @router.post("/api/v1/channels", status_code=201, summary="Create a notification channel")
    async def create_channel(request: Request, body: ChannelBody) -> dict[str, Any]:
        if not body.name:
            raise ApiError(400, "invalid_channel", "name: a channel needs a name")
        found = await run_in_threadpool(_service(request).catalog.get_channel, body.name, viewer_of(request))
        if found is not None:
            raise ApiError(409, "exists", f"a channel named {body.name!r} exists; PUT it to replace it")
        return (await _put_channel(request, body.name, body))[0]

    @router.get("/api/v1/channels/{name}", summary="One channel (never its secrets)")
    async def get_channel(name: str, request: Request) -> dict[str, Any]:
        row = await run_in_threadpool(_service(request).catalog.get_channel, name, viewer_of(request))
        if row is None:
            raise ApiError(404, "not_found", f"no channel named {name!r}")
        return row

    @router.put("/api/v1/channels/{name}", summary="Create or replace a channel")
    async def put_channel(name: str, request: Request, body: ChannelBody) -> JSONResponse:
        if body.name is not None and body.name != name:
            raise ApiError(400, "invalid_channel", f"name: the body says {body.name!r}, the path {name!r}")
        row, created = await _put_channel(request, name, body)
        return JSONResponse(row, status_code=201 if created else 200)

    @router.delete("/api/v1/channels/{name}", summary="Delete a channel no rule uses")
    async def delete_channel(name: str, request: Request) -> dict[str, Any]:
        try:
            await run_in_threadpool(_service(request).catalog.delete_channel, name, viewer_of(request))
        except CatalogError as exc:
            raise _catalog_error(exc) from None
        await _audit(request, "channel.delete", name)
        return {"deleted": name}

    @router.post("/api/v1/channels/{name}/test", summary="Send a test notification through a channel")
    async def test_channel(name: str, request: Request) -> dict[str, Any]:
        try:
            await _service(request).dispatcher.send_test(name, viewer_of(request))
        except LookupError as exc:
            raise ApiError(404, "not_found", str(exc).strip("'\"")) from None
        except Blocked as exc:
            raise ApiError(400, "host_not_allowed", str(exc)) from None
        except SecretsUnreadable as exc:
            raise ApiError(500, "secrets_unreadable", str(exc)) from None
        except DeliveryError as exc:  # one sentence whatever happened: never the receiver's answer
            raise ApiError(502, "delivery_failed", f"the test notification was {exc}") from None
        await _audit(request, "channel.test", name)
        return {"sent": True, "channel": name}

    # ---------------------------------------------------------------------------- silences

    @router.get("/api/v1/silences", summary="Active (and with expired=true, ended) silences")
    async def list_silences(request: Request, expired: bool = False) -> dict[str, Any]:
        rows = await run_in_threadpool(lambda: _service(request).silences.list(include_expired=expired,
                                                                               viewer=viewer_of(request)))
        return {"silences": rows}

    @router.post("/api/v1/silences", status_code=201, summary="Silence alerts matching labels until a time")
    async def create_silence(request: Request, body: SilenceCreate) -> dict[str, Any]:
        service = _service(request)
        try:
            row = await run_in_threadpool(lambda: service.silences.create(
                body, actor=actor_of(request), now_ns=service.clock.now_ns(), owner=viewer_of(request)))
        except ValueError as exc:
            raise ApiError(400, "invalid_silence", str(exc)) from None
        await _audit(request, "silence.create", str(row["id"]),
                     detail=", ".join(f"{m.name}{m.op}{m.value}" for m in body.matchers)[:500])
        return row

    @router.get("/api/v1/silences/{silence_id}", summary="One silence")
    async def get_silence(silence_id: RowId, request: Request) -> dict[str, Any]:
        row = await run_in_threadpool(_service(request).silences.get, silence_id, viewer_of(request))
        if row is None:
            raise ApiError(404, "not_found", f"no silence {silence_id}")
        return row

    @router.delete("/api/v1/silences/{silence_id}", summary="End a silence now")
    async def expire_silence(silence_id: RowId, request: Request) -> dict[str, Any]:
        service = _service(request)
        now = service.clock.now_ns()
        done = await run_in_threadpool(lambda: service.silences.expire(silence_id, now_ns=now,
                                                                      viewer=viewer_of(request)))
        if not done:
            raise ApiError(404, "not_found", f"no active silence {silence_id}")
        await _audit(request, "silence.expire", str(silence_id))
        return {"expired": silence_id}

    return router
