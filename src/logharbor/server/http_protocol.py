"""The HTTP listener's own limits: request-head size and count, and read timeouts.

Why: uvicorn's httptools protocol reads a request head of any size (an 8 MB header, 10,000
headers) and waits forever for a client that connects and sends nothing, or a byte every few
seconds, so a few hundred slow clients held the server's connections indefinitely. This
subclass adds, on every connection (plain and TLS, HTTP and the WebSocket handshake):

- ``max_header_bytes``: the request line and headers together; over it is a 431;
- ``max_headers``: the number of header fields; over it is a 431;
- ``header_timeout_s``: the whole head must arrive within this time of the connection (or of the
  first byte of the next request on a kept-alive connection); otherwise a 408 and the connection
  is closed (a connection that sent nothing is just closed);
- ``body_timeout_s``: a body must keep coming: it may take ``body_timeout_s`` plus one second
  per :data:`BODY_MIN_RATE` bytes received (Apache's ``RequestReadTimeout body=20,MinRate=500``),
  so a large upload on a slow link passes and a trickle of bytes does not hold a connection.

Idle kept-alive connections are closed by uvicorn's own ``timeout_keep_alive`` (5 s).

- ``cap`` (``http_max_connections``): open connections, WebSockets included. One more is answered
  ``503`` (JSON error ``too_many_connections``, ``Retry-After``) and closed as soon as it is made,
  counted and logged once per burst (:mod:`logharbor.server.connections`, the same rule as the
  syslog and forward listeners); the open ones are not touched. uvicorn's own
  ``limit_concurrency`` is not used: it accepts every connection and answers each *request* over
  the limit with a plain-text 503, so idle sockets were never bounded and the answer was not the
  API's error shape.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from logharbor.server.connections import ConnectionCap
from logharbor.server.errors import error_body

__all__ = ["BODY_MIN_RATE", "HttpLimits", "limited_protocol"]

#: bytes per second that buy a slow body one more second (``body_timeout_s`` is the base)
BODY_MIN_RATE = 500


class HttpLimits:
    """The values one server's listener enforces."""

    def __init__(self, *, max_header_bytes: int, max_headers: int, header_timeout_s: float,
                 body_timeout_s: float, cap: ConnectionCap | None = None) -> None:
        self.cap = cap
        self.max_header_bytes = max_header_bytes
        self.max_headers = max_headers
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = body_timeout_s


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request that broke a head limit."""


def limited_protocol(limits: HttpLimits) -> type[asyncio.Protocol]:
    """A uvicorn ``http`` protocol class that enforces ``limits``."""

    class LimitedHttpToolsProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head_bytes = 0
            self._head_count = 0
            self._head_raw = 0  # bytes received while a head is incomplete (the parser buffers them)
            self._refused = False
            self._timer: asyncio.TimerHandle | None = None
            self._phase = "head"  # "head", "body" or "" (nothing to time)
            self._phase_began = 0.0
            self._body_bytes = 0

        # ---------------------------------------------------------------- timing

        def _arm(self, phase: str) -> None:
            self._phase = phase
            self._phase_began = self.loop.time()
            self._body_bytes = 0
            if self._timer is None:
                timeout = limits.header_timeout_s if phase == "head" else limits.body_timeout_s
                self._timer = self.loop.call_later(timeout, self._check)

        def _disarm(self) -> None:
            self._phase = ""
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _deadline(self) -> float:
            if self._phase == "head":
                return self._phase_began + limits.header_timeout_s
            return self._phase_began + limits.body_timeout_s + self._body_bytes / BODY_MIN_RATE

        def _check(self) -> None:
            self._timer = None
            if not self._phase or self.transport is None or self.transport.is_closing():
                return
            left = self._deadline() - self.loop.time()
            if left > 0:  # a body that kept coming earned more time
                self._timer = self.loop.call_later(left, self._check)
                return
            what = "request headers" if self._phase == "head" else "request body"
            self.logger.warning("closing a connection from %s: the %s did not arrive in time",
                                self.client[0] if self.client else "?", what)
            cycle = self.cycle if self._phase == "body" else None
            if cycle is not None:  # the app waits for the body: it sees a disconnect
                cycle.disconnected = True
                cycle.message_event.set()
            started = getattr(self, "url", b"")  # some of a request line came (absent before any byte)
            if (cycle is None or not cycle.response_started) and (self._phase == "body" or started):
                self._answer(408, "request_timeout", f"the {what} did not arrive within the time "
                             f"allowed ({'header_timeout_s' if self._phase == 'head' else 'body_timeout_s'})")
            else:
                self.transport.close()
            self._phase = ""

        def _answer(self, status: int, code: str, message: str, extra: bytes = b"") -> None:
            body = orjson.dumps(error_body(code, message))
            head = [STATUS_LINE[status], b"content-type: application/json\r\n", extra,
                    b"content-length: " + str(len(body)).encode() + b"\r\n", b"connection: close\r\n\r\n"]
            self.transport.write(b"".join(head) + body)
            self.transport.close()

        # ---------------------------------------------------------------- connection and parser

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)  # (counted in self.connections from here on)
            cap = limits.cap
            if cap is not None and cap.full(len(self.connections) - 1):
                self._refused = True
                self._answer(503, "too_many_connections",
                             f"the server has {cap.limit} connections open, its limit "
                             "(http_max_connections); try again shortly", b"retry-after: 1\r\n")
                return
            self._arm("head")

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            # uvicorn's own data_received, except that a head over a limit has been answered
            # already (431) instead of being reported as an invalid request
            if self._refused:
                return
            self._unset_keepalive_if_required()
            try:
                self.parser.feed_data(data)
                if self._phase == "head":  # a head still incomplete after all of this: count it all
                    self._head_raw += len(data)
                    if self._head_raw > limits.max_header_bytes:
                        self._count(self._head_raw)
            except _Refused:
                return
            except httptools.HttpParserError:
                if self._refused:
                    return
                message = "Invalid HTTP request received."
                self.logger.warning(message)
                self.send_400_response(message)
            except httptools.HttpParserUpgrade:
                if self._should_upgrade():
                    self._disarm()
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()

        def _count(self, size: int, fields: int = 0) -> None:
            self._head_bytes += size
            self._head_count += fields
            if self._head_bytes > limits.max_header_bytes or self._head_count > limits.max_headers:
                self._refused = True
                self._disarm()
                over = (f"{self._head_count} header fields, over the limit of {limits.max_headers} "
                        "(max_headers)" if self._head_count > limits.max_headers else
                        f"over {limits.max_header_bytes} bytes of request line and headers "
                        "(max_header_bytes)")
                self.logger.warning("refused a request from %s: %s",
                                    self.client[0] if self.client else "?", over)
                self._answer(431, "headers_too_large", f"the request has {over}")
                raise _Refused

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._head_bytes = 0
            self._head_count = 0
            self._head_raw = 0
            if self._phase != "head" or self._timer is None:
                self._disarm()
                self._arm("head")  # a kept-alive connection's next request: its own head time

        def on_url(self, url: bytes) -> None:
            self._count(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count(len(name) + len(value) + 4, 1)
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._disarm()
            super().on_headers_complete()
            if not self._refused:
                self._arm("body")

        def on_body(self, body: bytes) -> None:
            self._body_bytes += len(body)
            super().on_body(body)

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

    return LimitedHttpToolsProtocol
