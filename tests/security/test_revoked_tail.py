"""A live tail ends when its key is revoked or expires: no record reaches it afterwards.

Keys are checked when a request starts; a tail is one request that lasts for hours, so a key
revoked (because it leaked) kept receiving every new record of its scope through a tail it had
opened before. Each transport is held to it: SSE and the WebSocket of ``/api/v1/tail``, and
Loki's ``/loki/api/v1/tail``; and a key that expires while its tail is open.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from tests.conftest import ServerProcess
from tests.tail.clients import SseClient, post

from logharbor.cli.tail import ws_url


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("revoked-tail") / "data", "--batch-max-age", "0.2").start()
    yield proc
    proc.stop()


class WsReader:
    """Reads a WebSocket on a thread: its messages, then ``None`` once the server closed it."""

    def __init__(self, url: str, key: str) -> None:
        from websockets.sync.client import connect

        self.messages: queue.Queue[str | None] = queue.Queue()
        self.ws = connect(url, additional_headers={"authorization": f"Bearer {key}"}, open_timeout=30)
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):  # any end of the connection is the end
            for message in self.ws:
                self.messages.put(str(message))
        self.messages.put(None)

    def until(self, needle: str, timeout: float = 60.0) -> list[str]:
        """Messages up to one containing ``needle`` (or up to the close: then None is last)."""
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            item = self.messages.get(timeout=max(0.1, deadline - time.monotonic()))
            out.append(item)  # type: ignore[arg-type]
            if item is None or needle in item:
                return out


def _sse_until_end(client: SseClient, timeout: float = 60.0) -> list[Any]:
    """Every event the SSE client gets until its stream ends (the thread finishes)."""
    client.thread.join(timeout)
    assert not client.thread.is_alive(), "the tail stream of a revoked key did not end"
    events = []
    while not client.events.empty():
        events.append(client.events.get())
    return events


def test_a_revoked_key_s_tails_end_and_see_nothing_after(server: ServerProcess) -> None:
    key = server.create_key("reader")
    prefix = key.split("_")[1]
    sse = SseClient(server, "revmark", key)
    sse.wait_subscribed()
    ws = WsReader(ws_url(server.url, "revmark"), key)
    loki = WsReader(server.url.replace("http", "ws", 1) + "/loki/api/v1/tail?"
                    + urlencode({"query": '{service="revtail"} |= "revmark"'}), key)
    assert "subscribed" in ws.until("subscribed")[-1]
    witness = SseClient(server, "revmark")  # the admin's tail: says when the hub has published
    witness.wait_subscribed()
    post(server, [{"message": "revmark before", "service": "revtail"}])
    assert sse.records_until("revmark before")[0][-1]["message"] == "revmark before"
    assert "revmark before" in ws.until("revmark before")[-1]
    assert "revmark before" in loki.until("revmark before")[-1]
    with server.client() as client:
        assert client.delete(f"/api/v1/keys/{prefix}").status_code == 200
    post(server, [{"message": "revmark after", "service": "revtail"}])
    post(server, [{"message": "revmark last", "service": "revtail"}])
    witness.records_until("revmark last")  # published to every tail by now
    assert not [e for e in _sse_until_end(sse) if isinstance(e, tuple) and e[0] == "record"]
    for reader in (ws, loki):
        rest = reader.until("revmark last")
        assert rest[-1] is None and not any("revmark" in m for m in rest[:-1]), rest
    witness.close()
    answer = httpx.post(server.url + "/api/v1/query", json={"q": "*"}, headers={"authorization": f"Bearer {key}"})
    assert answer.status_code == 401


def test_a_key_that_expires_while_its_tail_is_open_sees_nothing_after(server: ServerProcess) -> None:
    with server.client() as client:
        made = client.post("/api/v1/keys", json={"role": "reader", "expires": "3s"})
    assert made.status_code == 201, made.text
    key, expires_ns = made.json()["key"], made.json()["expires_ns"]
    sse = SseClient(server, "expmark", key)
    sse.wait_subscribed()
    post(server, [{"message": "expmark before", "service": "revtail"}])
    assert sse.records_until("expmark before")[0][-1]["message"] == "expmark before"
    while time.time_ns() <= expires_ns:  # the condition is the clock itself
        time.sleep(0.05)
    witness = SseClient(server, "expmark")
    witness.wait_subscribed()
    post(server, [{"message": "expmark after", "service": "revtail"}])
    witness.records_until("expmark after")
    assert not [e for e in _sse_until_end(sse) if isinstance(e, tuple) and e[0] == "record"]
    witness.close()
