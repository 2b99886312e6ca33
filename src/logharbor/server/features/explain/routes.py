"""``POST /api/v1/explain``: what sets a query's records in a focus window apart from a baseline.

Body ``{"q", "from", "to", "since", "baseline", "baseline_from", "baseline_to", "alpha",
"limit"}``; the answer is described in docs/explain.md. Errors are JSON 4xx bodies as the query
API's: the query's own codes (``query_syntax``, ``filter_only``, …), ``invalid_time`` for a bad
or missing window, ``invalid_baseline`` for a baseline that cannot be made. The key's scope
applies (``request.state.query_scope``), and every read goes through the store's query gate and
the request's time and memory budget, as a search does.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import orjson
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from logharbor import exactjson
from logharbor.server.engine.store.base import StoreError
from logharbor.server.errors import ApiError
from logharbor.server.features.query.errors import QueryError
from logharbor.server.features.query.service import query_error, store_error
from logharbor.server.features.query.window import request_time
from logharbor.server.limits import query_settings

from .engine import ExplainRequest, explain
from .stats import DEFAULT_ALPHA

__all__ = ["ExplainBody", "explain_router"]

_MAX_QUERY_CHARS = 64 * 1024


class ExplainBody(BaseModel):
    """The body of ``POST /api/v1/explain``."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    q: str = Field("*", max_length=_MAX_QUERY_CHARS, description="the query (a filter)")
    # bool: kept a bool (pydantic made JSON true the int 1) so request_time refuses it (400)
    from_: str | bool | int | float | None = Field(None, alias="from", description="focus start (inclusive)")
    to: str | bool | int | float | None = Field(None, description="focus end (exclusive), default now")
    since: str | None = Field(None, description="same as from, e.g. 15m or now-1h")
    baseline: Literal["previous", "window", "complement"] = Field(
        "previous", description="previous: the window of equal length before the focus; window: "
        "baseline_from..baseline_to; complement: the other records of the focus window")
    baseline_from: str | bool | int | float | None = None
    baseline_to: str | bool | int | float | None = None
    alpha: float = Field(DEFAULT_ALPHA, strict=True, gt=0, le=0.5, description="family-wise error rate")
    limit: int = Field(20, strict=True, ge=1, le=100, description="values listed")


def _window(start: int | None, end: int | None, names: str) -> tuple[int, int]:
    if start is None or end is None:
        raise ApiError(400, "invalid_time", f"explain needs a window: give {names}")
    if end <= start:
        raise ApiError(400, "invalid_time", f"the window {names} is empty: its end must be after its start")
    return start, end


def request_of(body: ExplainBody, now: int) -> ExplainRequest:
    """The body's windows read and checked (400 ``invalid_time`` / ``invalid_baseline``)."""
    start = request_time(body.from_ if body.from_ is not None else body.since, "from", now)
    end = request_time(body.to, "to", now)
    focus = _window(start, now if end is None else end, "'from' (or 'since') and 'to'")
    baseline = None
    if body.baseline == "window":
        baseline = _window(request_time(body.baseline_from, "baseline_from", now),
                           request_time(body.baseline_to, "baseline_to", now),
                           "'baseline_from' and 'baseline_to'")
        if baseline[0] < focus[1] and focus[0] < baseline[1]:
            raise ApiError(400, "invalid_baseline", "the baseline window overlaps the focus window",
                           detail={"hint": "baseline 'complement' compares against the rest of one window"})
    elif body.baseline_from is not None or body.baseline_to is not None:
        raise ApiError(400, "invalid_baseline", "baseline_from and baseline_to need baseline 'window'")
    return ExplainRequest(q=body.q.strip() or "*", focus=focus, mode=body.baseline, baseline=baseline,
                          alpha=body.alpha, limit=body.limit)


def explain_router() -> APIRouter:
    """The router the app factory mounts."""
    router = APIRouter(tags=["query"])

    @router.post("/api/v1/explain", summary="What sets a query's records in a window apart from a baseline")
    async def run_explain(body: ExplainBody, request: Request) -> Response:
        now = time.time_ns()
        req = request_of(body, now)
        scope = getattr(request.state, "query_scope", None)
        store = request.app.state.store
        settings = query_settings(request)

        def work() -> dict[str, Any]:
            try:
                return explain(store, req, scope=scope, settings=settings, now_ns=now)
            except QueryError as exc:
                raise query_error(exc) from None
            except ValueError as exc:
                raise ApiError(400, "invalid_baseline", str(exc)) from None
            except StoreError as exc:
                raise store_error(exc) from exc

        answer = await run_in_threadpool(work)
        return Response(exactjson.dumps(answer, option=orjson.OPT_NON_STR_KEYS),
                        media_type="application/json")

    return router
