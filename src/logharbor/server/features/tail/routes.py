"""``GET /api/v1/tail?q=…``: the live tail's transports (WebSocket, Server-Sent Events, NDJSON);
the hub that filters every written record for its subscribers is ``hub.py``, whose docstring
describes the wire form.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.requests import HTTPConnection, Request
from starlette.responses import StreamingResponse

from logharbor.server.auth import key_still_valid
from logharbor.server.errors import ApiError
from logharbor.server.features.tail.hub import Item, Subscriber, TailHub

__all__ = ["tail_router"]

log = logging.getLogger("logharbor.server.features.tail.hub")  # the hub's: one logger for the tail


def _hub(conn: HTTPConnection) -> TailHub:
    hub = getattr(conn.app.state, "tail_hub", None)
    if hub is None:
        raise ApiError(503, "tail_unavailable", "live tail is not running on this server")
    return hub


def _scope(conn: HTTPConnection) -> tuple[str, dict[str, Any]] | None:
    return getattr(conn.state, "query_scope", None)


def _sse(item: Item) -> bytes:
    if isinstance(item, int):
        return b"event: dropped\ndata: " + orjson.dumps({"dropped": item}) + b"\n\n"
    return b"data: " + item + b"\n\n"


def _ndjson(item: Item) -> bytes:
    return (orjson.dumps({"dropped": item}) if isinstance(item, int) else item) + b"\n"


async def _stream(hub: TailHub, sub: Subscriber, first: bytes, encode: Callable[[Item], bytes],
                  keepalive: bytes, keepalive_s: float) -> AsyncIterator[bytes]:
    try:
        yield first
        while not sub.closed:
            items = await sub.take(timeout=keepalive_s)
            yield b"".join(encode(item) for item in items) if items else keepalive
    finally:
        hub.unsubscribe(sub)


async def _ws_sender(websocket: WebSocket, sub: Subscriber) -> None:
    while not sub.closed:
        for item in await sub.take():
            if isinstance(item, int):
                await websocket.send_text(f'{{"dropped":{item}}}')
            else:
                await websocket.send_text(item.decode())


async def _ws_receiver(websocket: WebSocket) -> None:
    """Reads until the client goes away (clients send nothing else that matters)."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return


def tail_router(keepalive_s: float = 15.0) -> APIRouter:
    """The router the app factory mounts (the hub itself lives in ``app.state.tail_hub``)."""
    router = APIRouter(tags=["tail"])

    @router.get("/api/v1/tail", summary="Live tail (Server-Sent Events, or NDJSON with Accept)")
    async def tail_http(request: Request, q: str = "*") -> StreamingResponse:
        hub = _hub(request)
        sub = await hub.subscribe(q, _scope(request), key_still_valid(request))
        hello = orjson.dumps({"q": sub.filter.text})
        if "application/x-ndjson" in request.headers.get("accept", ""):
            body = _stream(hub, sub, orjson.dumps({"subscribed": {"q": sub.filter.text}}) + b"\n",
                           _ndjson, b"\n", keepalive_s)
            return StreamingResponse(body, media_type="application/x-ndjson")
        body = _stream(hub, sub, b"event: subscribed\ndata: " + hello + b"\n\n", _sse,
                       b": keepalive\n\n", keepalive_s)
        return StreamingResponse(body, media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @router.websocket("/api/v1/tail")
    async def tail_ws(websocket: WebSocket, q: str = "*") -> None:
        try:
            hub = _hub(websocket)
            sub = await hub.subscribe(q, _scope(websocket), key_still_valid(websocket))
        except ApiError as exc:
            await websocket.accept()
            await websocket.send_text(orjson.dumps(
                {"error": {"code": exc.code, "message": exc.message, **exc.extra}}).decode())
            await websocket.close(code=1008 if exc.status < 500 else 1013)
            return
        await websocket.accept()
        try:
            await websocket.send_text(orjson.dumps({"subscribed": {"q": sub.filter.text}}).decode())
            sender = asyncio.create_task(_ws_sender(websocket, sub))
            receiver = asyncio.create_task(_ws_receiver(websocket))
            done, pending = await asyncio.wait({sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            for task in done:
                exc = task.exception()
                if exc is not None and not isinstance(exc, WebSocketDisconnect | OSError):
                    log.warning("tail WebSocket ended with %r", exc)
        except (WebSocketDisconnect, OSError):
            pass
        finally:
            hub.unsubscribe(sub)
            with contextlib.suppress(Exception):
                await websocket.close()

    return router
