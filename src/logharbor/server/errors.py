"""The server's exception tree and the one JSON error shape every endpoint answers with.

``{"error": {"code": "...", "message": "...", "detail": ...}}`` with a 4xx/5xx status; a stack
trace never reaches a client.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = ["ApiError", "api_error_handler", "error_body"]


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
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra or {}


def error_body(code: str, message: str, detail: Any = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
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
