"""Tail clients for tests: SSE on a thread, WebSocket, and a raw socket that can stop reading."""

from __future__ import annotations

import contextlib
import queue
import re
import socket
import threading
import time
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from tests.conftest import ServerProcess

from logharbor.cli.tail import Event, _event, ws_url


def post(server: ServerProcess, records: list[dict[str, Any]]) -> int:
    """Ingest records through the native endpoint; the answer comes after the WAL fsync."""
    body = b"\n".join(orjson.dumps(r) for r in records)
    with server.client() as client:
        response = client.post("/api/v1/logs", content=body, headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(records)
    return len(records)


class SseClient:
    """Reads ``GET /api/v1/tail`` on a daemon thread; events land in :attr:`events`."""

    def __init__(self, server: ServerProcess, q: str, key: str | None = None) -> None:
        self.events: queue.Queue[Event | BaseException] = queue.Queue()
        self.closed = False
        self._socket: socket.socket | None = None
        headers = {"authorization": f"Bearer {key}"} if key else server.headers
        self._client = httpx.Client(base_url=server.url, headers=headers,
                                    timeout=httpx.Timeout(None, connect=10))
        self.thread = threading.Thread(target=self._run, args=(q,), daemon=True)
        self.thread.start()

    def _run(self, q: str) -> None:
        try:
            with self._client.stream("GET", "/api/v1/tail", params={"q": q},
                                     headers={"accept": "text/event-stream"}) as response:
                self._socket = response.extensions["network_stream"].get_extra_info("socket")
                kind, data = "message", ""
                for line in response.iter_lines():
                    if line.startswith("event:"):
                        kind = line[6:].strip()
                    elif line.startswith("data:"):
                        data = line[5:].strip()
                    elif not line and data:
                        self.events.put(_event(kind, data))
                        kind, data = "message", ""
        except BaseException as exc:  # handed to the test thread
            if not self.closed:
                self.events.put(exc)

    def close(self) -> None:
        """Hang up (the server notices and drops the subscription)."""
        self.closed = True
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.shutdown(socket.SHUT_RDWR)
        self.thread.join(timeout=30)
        self._client.close()

    def next(self, timeout: float = 60.0) -> Event:
        item = self.events.get(timeout=timeout)
        if isinstance(item, BaseException):
            raise item
        return item

    def wait_subscribed(self) -> None:
        assert self.next()[0] == "subscribed"

    def records_until(self, last_message: str, timeout: float = 60.0) -> tuple[list[dict[str, Any]], int]:
        """Records up to and including the one whose message is ``last_message``, and drops seen."""
        out: list[dict[str, Any]] = []
        dropped = 0
        deadline = time.monotonic() + timeout
        while True:
            kind, value = self.next(timeout=max(0.1, deadline - time.monotonic()))
            if kind == "dropped":
                dropped += value
            elif kind == "record":
                out.append(value)
                if value.get("message") == last_message:
                    return out, dropped


class WsClient:
    """A WebSocket tail client (the ``websockets`` sync client)."""

    def __init__(self, server: ServerProcess, q: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(ws_url(server.url, q), additional_headers={"authorization": f"Bearer {server.api_key}"},
                          open_timeout=30)

    def next(self, timeout: float = 60.0) -> dict[str, Any]:
        return orjson.loads(self.ws.recv(timeout=timeout))

    def close(self) -> None:
        self.ws.close()


class StalledSse:
    """A client that subscribes, then stops reading: its socket buffers fill and stay full."""

    def __init__(self, server: ServerProcess, q: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: small window
        self.sock.connect(("127.0.0.1", server.port))
        path = "/api/v1/tail?" + urlencode({"q": q})
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                          f"Authorization: Bearer {server.api_key}\r\n\r\n".encode())
        self.data = b""
        self.sock.settimeout(30)
        while b"event: subscribed" not in self.data:
            chunk = self.sock.recv(4096)
            assert chunk, self.data
            self.data += chunk
        assert self.data.startswith(b"HTTP/1.1 200"), self.data[:200]

    def drain(self, total: int, timeout: float = 90.0) -> tuple[int, int]:
        """Read again until records + dropped account for ``total``; (records, dropped)."""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(5)
        while time.monotonic() < deadline:
            records, dropped = self.counts()
            if records + dropped >= total:
                return records, dropped
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError:
                continue
            if not chunk:
                break
            self.data += chunk
        return self.counts()

    def counts(self) -> tuple[int, int]:
        records = self.data.count(b'data: {"timestamp"')
        dropped = sum(int(n) for n in re.findall(rb'event: dropped\ndata: \{"dropped":(\d+)\}', self.data))
        return records, dropped

    def close(self) -> None:
        self.sock.close()


def wait_until(predicate: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def http_error(server: ServerProcess, q: str) -> httpx.Response:
    with server.client() as client:
        return client.get("/api/v1/tail", params={"q": q}, headers={"accept": "text/event-stream"})
