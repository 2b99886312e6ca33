"""The server's exception tree and the one JSON error shape every endpoint answers with.

``{"error": {"code": "...", "message": "...", "detail": ...}}`` with a 4xx/5xx status; a stack
trace never reaches a client.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from logharbor.types import JsonObject

__all__ = ["ApiError", "api_error_handler", "error_body", "unexpected_error_handler"]

log = logging.getLogger("logharbor.server")


class ApiError(Exception):
    """An error a client caused or must know about, with its HTTP status and a stable code."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        detail: Any = None,
        headers: dict[str, str] | None = None,
        extra: JsonObject | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}


def error_body(code: str, message: str, detail: Any = None, **extra: Any) -> JsonObject:
    body: JsonObject = {"code": code, "message": message}
    if detail is not None:
        body["detail"] = detail
    body.update(extra)
    return {"error": body}


async def api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(
        error_body(exc.code, exc.message, exc.detail, **exc.extra),
        status_code=exc.status,
        headers=exc.headers,
    )


async def unexpected_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Whatever no route turned into an :class:`ApiError`, still in the one JSON error shape.

    A full disk anywhere (the metadata database, a state file, the store) is a 507 with
    ``Retry-After``: the request did not complete and may be sent again once there is room
    (issue #20). A metadata database that is busy or away is a 503. Anything else is a 500 whose
    trace goes to the log, never to the client.
    """
    from logharbor.server.diskspace import is_no_space

    if is_no_space(exc):
        log.warning("%s %s: the disk is full: %s", request.method, request.url.path, exc)
        return JSONResponse(error_body("insufficient_storage", "the server's disk is full; the request "
                                       "was not completed, send it again later", str(exc)[:500]),
                            status_code=507, headers={"Retry-After": "5"})
    if type(exc).__name__ == "OperationalError" and type(exc).__module__.startswith("sqlalchemy"):
        log.warning("%s %s: the metadata database failed: %s", request.method, request.url.path, exc)
        return JSONResponse(error_body("metadata_unavailable", "the metadata database cannot serve "
                                       "this request right now; retry later"),
                            status_code=503, headers={"Retry-After": "5"})
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body("internal_error", "the server failed to handle this request; "
                                   "the error is in its log"), status_code=500)
