"""gzip for responses a client asked to have compressed: the UI's assets and the API's JSON.

Starlette's :class:`~starlette.middleware.gzip.GZipMiddleware` does the compressing; this module
decides when it may, because a log system's streams must flush as they go:

- ``text/event-stream`` (the live tail over SSE) and ``application/x-ndjson`` (the tail's NDJSON
  form and ``POST /api/v1/query`` with ``Accept: application/x-ndjson``, which ``logharbor query
  --limit 0`` reads) are never compressed, so each line leaves when it is written and a proxy or
  client need not inflate a stream to see it; Starlette's own list (already-compressed images,
  fonts and archives, gRPC) is kept;
- WebSocket traffic (``/api/v1/tail``, Loki's tail) is not HTTP responses and passes untouched;
- answers under ``MINIMUM_SIZE`` bytes are not worth the CPU and stay as they are;
- a response that already has a ``Content-Encoding`` or is a ``206`` is left alone;
- a client that does not list gzip in ``Accept-Encoding``, or refuses it with ``q=0``, gets
  identity (Starlette's middleware only looks for the substring "gzip").

Request bodies are not this module's business: ingest undoes a request's own ``Content-Encoding``
(``ingest/encoding.py``) whatever the answer's encoding is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware

__all__ = ["MINIMUM_SIZE", "STREAMING_TYPES", "ResponseCompression", "accepts_gzip"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: below this many bytes the header overhead and the CPU outweigh what gzip saves
MINIMUM_SIZE = 1024
#: responses that must reach the client line by line as they are written
STREAMING_TYPES = ("text/event-stream", "application/x-ndjson")
#: level 6 (zlib's default) keeps most of level 9's ratio at a fraction of its CPU
COMPRESS_LEVEL = 6


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value allows gzip (``gzip`` or ``*``, with a q above 0)."""
    verdict: dict[str, bool] = {}
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        name = name.strip().lower()
        if not name:
            continue
        allowed = True
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    allowed = float(value) > 0
                except ValueError:
                    allowed = False
        verdict[name] = allowed
    if "gzip" in verdict:
        return verdict["gzip"]
    if "x-gzip" in verdict:
        return verdict["x-gzip"]
    return verdict.get("*", False)


class ResponseCompression:
    """gzip the answers of clients that accept it, except streams (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, minimum_size: int = MINIMUM_SIZE) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size, compresslevel=COMPRESS_LEVEL,
                                   exclude_content_types=(*DEFAULT_EXCLUDED_CONTENT_TYPES, *STREAMING_TYPES))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        accept = b", ".join(v for k, v in scope.get("headers", []) if k == b"accept-encoding")
        if accepts_gzip(accept.decode("latin-1")):
            # Starlette's own test is a substring match: it sees a plain yes ("*" included)
            headers = [(k, v) for k, v in scope.get("headers", []) if k != b"accept-encoding"]
            await self.gzip({**scope, "headers": [*headers, (b"accept-encoding", b"gzip")]}, receive, send)
        else:
            await self.app(scope, receive, send)
