"""Every listener keeps at most its limit of open connections (server/connections.py): one more is
refused at once (HTTP: a JSON 503; syslog TCP and forward: a reset), counted in
``logharbor_connections_refused_total{listener}`` and logged once per burst, and nothing a
connection already open sends is lost. Before, nothing bounded them: one client could open
thousands of sockets."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path

import httpx
import pytest
from tests.conftest import ServerProcess, free_port
from tests.ingest.test_syslog_stop import stored_messages, until

from logharbor.server.engine.wal import WriteAheadLog
from logharbor.server.ingest.base import Ingestor
from logharbor.server.ingest.forward import ForwardIngest
from logharbor.server.ingest.syslog import SyslogIngest


def refused(sock: socket.socket) -> bool:
    """Whether the server ended ``sock`` (a reset or an end of stream) without sending anything."""
    sock.settimeout(30)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_a_listener_at_its_limit_refuses_new_connections_and_keeps_the_open_ones(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    wal = WriteAheadLog(tmp_path / "wal", fsync=False)
    wal.open()
    ingestor = Ingestor(wal)
    counted: list[str] = []
    caplog.set_level(logging.WARNING, logger="logharbor.server.connections")

    async def run() -> None:
        syslog = SyslogIngest(tcp="127.0.0.1:0", max_connections=3)
        forward = ForwardIngest(address="127.0.0.1:0", max_connections=1)
        syslog.on_refused = forward.on_refused = counted.append
        await syslog.start(ingestor)
        await forward.start(ingestor)
        at = ("127.0.0.1", syslog.bound["tcp"][1])
        listener = syslog.servers[0]
        peers = [socket.create_connection(at) for _ in range(3)]
        for n, peer in enumerate(peers):
            peer.sendall(b"<14>1 - h app - - - first-%d\n" % n)
        await until(lambda: len(listener.streams) == 3, "three connections read")
        extra = [socket.create_connection(at) for _ in range(4)]  # the kernel completes them
        await until(lambda: listener.cap is not None and listener.cap.refused == 4, "four refusals")
        for sock in extra:
            assert await asyncio.to_thread(refused, sock)
            sock.close()
        for n, peer in enumerate(peers):  # the open ones go on as before
            peer.sendall(b"<14>1 - h app - - - second-%d\n" % n)
        await until(lambda: sum(m.startswith("second-") for m in stored_messages(wal)) == 3, "the open ones")
        peers.pop().close()  # a slot frees: the next one is taken
        await until(lambda: listener.open == 2, "the closed connection to end")
        late = socket.create_connection(at)
        late.sendall(b"<14>1 - h app - - - late\n")
        await until(lambda: "late" in stored_messages(wal), "the connection taken after one closed")
        fwd_at = ("127.0.0.1", forward.bound[1])  # type: ignore[index]
        held, over = socket.create_connection(fwd_at), socket.create_connection(fwd_at)
        await until(lambda: "forward" in counted, "the forward refusal")
        assert await asyncio.to_thread(refused, over)
        for sock in (*peers, late, held, over):
            sock.close()
        await asyncio.gather(syslog.stop(time.monotonic() + 30), forward.stop(time.monotonic() + 30))

    try:
        with asyncio.Runner() as runner:
            runner.run(run())
        messages = stored_messages(wal)
    finally:
        ingestor.close()
        wal.close()
    assert sorted(messages) == sorted([*(f"first-{n}" for n in range(3)), *(f"second-{n}" for n in range(3)),
                                       "late"])
    assert counted == ["syslog tcp"] * 4 + ["forward"]
    lines = [r.getMessage() for r in caplog.records if r.name == "logharbor.server.connections"]
    assert len(lines) == 2, lines  # one per listener's burst, not one per refused connection
    assert "syslog tcp: refused 1 new connection(s): 3 are open" in lines[0]
    assert "listener_max_connections" in lines[0]


def test_http_and_syslog_limits_of_a_real_server(tmp_path: Path) -> None:
    """The settings reach the listeners: ``--http-max-connections`` (a JSON 503 with Retry-After
    for the connection over it, the open ones still served) and ``--listener-max-connections``."""
    syslog_port = free_port()
    server = ServerProcess(tmp_path / "data", "--http-max-connections", "4", "--listener-max-connections", "1",
                           "--syslog-tcp", f"127.0.0.1:{syslog_port}").start()
    try:
        with server.client() as client:  # one kept-alive connection, opened before the others
            assert client.get("/readyz").status_code == 200
            idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
            over = [httpx.get(server.url + "/readyz", timeout=30) for _ in range(3)]
            for response in over:
                assert response.status_code == 503, response.text
                assert response.json()["error"]["code"] == "too_many_connections"
                assert response.headers["retry-after"] == "1"
            assert client.get("/readyz").status_code == 200  # an open connection is still served
            for sock in idle:
                sock.close()
            held = socket.create_connection(("127.0.0.1", syslog_port))
            held.sendall(b"<14>1 - h app - - - held\n")
            over_syslog = socket.create_connection(("127.0.0.1", syslog_port))
            assert refused(over_syslog)
            over_syslog.close()
            held.close()

            def metrics() -> str:
                response = client.get("/metrics")
                return response.text if response.status_code == 200 else ""
            deadline = time.monotonic() + 30
            while 'listener="syslog tcp"' not in metrics() and time.monotonic() < deadline:
                time.sleep(0.1)
            text = metrics()
        assert 'logharbor_connections_refused_total{listener="http"} 3.0' in text, text
        assert 'logharbor_connections_refused_total{listener="syslog tcp"} 1.0' in text
        assert server.log().count("http: refused") == 1  # one line for the burst of three
    finally:
        server.stop()
