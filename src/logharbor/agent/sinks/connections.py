"""What the HTTP sinks share: their common options, one keep-alive connection per delivery
thread with TLS as configured, and reading ``Retry-After``."""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import os
import re
import socket
import ssl
import threading
import time
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit

from pydantic import Field, field_validator

from logharbor.agent.options import TLSConfig
from logharbor.agent.sinks.base import SinkConfig
from logharbor.agent.types import Retriable

__all__ = ["HttpSinkConfig", "KeepAlive", "parse_retry_after", "redact_url"]

_MASK = "***"
#: query parameters whose value is a credential (compared lower-case, ``-`` read as ``_``)
_SECRET_PARAMS = frozenset({"token", "access_token", "auth", "api_key", "apikey", "key", "password",
                            "pass", "pwd", "secret", "sig", "signature", "x_amz_signature"})
_USERINFO_PASSWORD = re.compile(r"(//[^/?#@:]*):[^/?#@]*@")
_SECRET_NAMES = "|".join(sorted(_SECRET_PARAMS)).replace("_", "[_-]")
_SECRET_PAIR = re.compile(r"([?&;](?:" + _SECRET_NAMES + r")=)[^&;#]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` fit for a log line or an error: the userinfo password and the values of
    credential-like query parameters (``token``, ``api_key`` …) replaced by ``***``; the rest
    (scheme, user, host, path, other parameters) kept because it is what the operator needs."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a bad port: fall back to the textual masking below
    except ValueError:
        return _SECRET_PAIR.sub(rf"\1{_MASK}", _USERINFO_PASSWORD.sub(rf"\1:{_MASK}@", url))
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:{_MASK}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, _MASK if k.lower().replace("-", "_") in _SECRET_PARAMS else v)
                           for k, v in pairs], safe="*")
    return parts._replace(netloc=netloc, query=query).geturl()


class HttpSinkConfig(SinkConfig):
    """Options of every sink that POSTs over HTTP(S): where, with which key, how long, TLS."""

    url: str
    api_key: str | None = None
    api_key_env: str | None = None
    timeout_secs: float = Field(default=30.0, gt=0)
    tls: TLSConfig = TLSConfig()
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http:// or https:// URL with a host, got {redact_url(value)!r}")
        return value

    def resolved_api_key(self) -> str | None:
        """``api_key``, else the value of the environment variable ``api_key_env`` names."""
        return self.api_key or (os.environ.get(self.api_key_env) if self.api_key_env else None)


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds to wait: delta-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class KeepAlive:
    """HTTP(S) connections to one endpoint: each delivery thread keeps its own open (no
    handshake per batch), drops it after an error, and all are closed when the sink stops."""

    def __init__(self, parts: SplitResult, *, default_port: int, timeout: float, tls: TLSConfig) -> None:
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (443 if self.https else default_port)
        self.timeout = timeout
        self.ssl_context: ssl.SSLContext | None = None
        if self.https:
            ctx = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
            if not tls.verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self.ssl_context = ctx
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []

    def get(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self.https:
                conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                   context=self.ssl_context)
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            conn.connect()
            assert conn.sock is not None
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._local.conn = conn
            self._all.append(conn)
        return conn

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[http.client.HTTPResponse, bytes]:
        """POST on this thread's connection: the response and its body. A transport or TLS
        failure drops the connection and raises :class:`Retriable` (the batch is sent again); a
        response asking to close the connection gets it closed after reading."""
        try:
            conn = self.get()
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except ssl.SSLCertVerificationError as exc:
            self.drop()
            raise Retriable(f"TLS certificate not trusted: {exc.verify_message}") from None
        except (OSError, http.client.HTTPException) as exc:
            self.drop()
            raise Retriable(f"{type(exc).__name__}: {exc}") from None
        if resp.getheader("Connection", "").lower() == "close":
            self.drop()
        return resp, data

    def drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            # forgotten too: kept here, every connection a receiver or proxy closed (``Connection:
            # close`` on each answer, an outage's reconnects) stayed in memory for good
            with contextlib.suppress(ValueError):
                self._all.remove(conn)

    def close_all(self) -> None:
        for conn in self._all:
            conn.close()

    def abort_all(self) -> None:
        """Cut every connection from another thread: a delivery thread blocked waiting for an
        answer wakes up with an error (the batch is then retried or left for the next owner)."""
        for conn in list(self._all):
            sock = conn.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
