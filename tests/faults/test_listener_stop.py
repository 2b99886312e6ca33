"""SIGTERM while syslog (TCP) and Fluent forward (no-ack) peers have sent lines the server has not
written yet: every line TCP took is stored, once. rsyslog, syslog-ng and a forwarder without acks
count a line delivered once TCP took it, so a stop that drops it is a silent loss.

The server's reading is held back by the test, not by luck: the WAL is filled first (HTTP, with a
60 s batch age, so nothing frees it before the SIGTERM), so no listener can write anything the
peers send; their lines wait in the server's memory and in the kernel's socket buffers. Then the
server is stopped with SIGSTOP, more peers connect (their connections wait in the listen backlog,
never accepted) and send; SIGTERM, SIGCONT. The shutdown flush frees the WAL; the listeners must
read every connection to the end of what its peer sent and write it, then stop. No peer closes
its connection before the stop. Counted in the store after a restart.
"""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import msgpack
import orjson
from tests.conftest import ServerProcess, free_port
from tests.faults.conftest import Tally
from tests.server.store_probe import query_stopped_store

LINES = 250  # per connection: a few KB, well inside a loopback socket's buffers


def fill_wal(server: ServerProcess, tally: Tally) -> None:
    """POST records until the WAL refuses (429): from then on nothing more can be written."""
    with server.client(headers={"content-type": "application/x-ndjson"}) as client:
        for batch in range(10_000):
            ids = [f"http-{batch}-{i}" for i in range(200)]
            body = b"\n".join(orjson.dumps({"message": rid, "pad": "x" * 200}) for rid in ids)
            response = client.post("/api/v1/logs", content=body)
            if response.status_code == 429:
                return
            assert response.status_code == 200, response.text
            tally.ack(ids)
    raise AssertionError("the WAL never filled")


def syslog_peer(port: int, name: str, tally: Tally) -> socket.socket:
    """A TCP syslog sender that writes LINES lines and keeps its connection open."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    ids = [f"syslog-{name}-{i}" for i in range(LINES)]
    sock.sendall(b"".join(f"<14>1 2026-12-07T12:00:00Z h app - - - {rid}\n".encode() for rid in ids))
    tally.ack(ids)  # TCP took them: the sender counts them delivered
    return sock


def forward_peer(port: int, name: str, tally: Tally) -> socket.socket:
    """A Fluent forward sender in no-ack mode (no ``chunk`` option), connection kept open."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    ids = [f"forward-{name}-{i}" for i in range(LINES)]
    sock.sendall(msgpack.packb(["app.log", [[1_796_630_400, {"message": rid}] for rid in ids]]))
    tally.ack(ids)
    return sock


def test_sigterm_stores_what_listener_peers_already_sent(tmp_path: Path) -> None:
    syslog_port, forward_port = free_port(), free_port()
    server = ServerProcess(tmp_path / "data", "--wal-max-mb", "1", "--batch-max-age", "60",
                           "--shutdown-timeout", "60", "--syslog-tcp", f"127.0.0.1:{syslog_port}",
                           "--forward", f"127.0.0.1:{forward_port}").start()
    tally = Tally("SIGTERM with syslog TCP and forward (no-ack) lines sent but not yet written")
    peers: list[socket.socket] = []
    try:
        fill_wal(server, tally)
        before = len(tally.acknowledged)
        for n in range(4):  # accepted connections: their lines wait behind the full WAL
            peers.append(syslog_peer(syslog_port, f"open{n}", tally))
            peers.append(forward_peer(forward_port, f"open{n}", tally))
        assert server.proc is not None
        server.proc.send_signal(signal.SIGSTOP)  # nothing is accepted or read from here on
        for n in range(4):  # completed by the kernel, waiting in the listen backlog
            peers.append(syslog_peer(syslog_port, f"backlog{n}", tally))
            peers.append(forward_peer(forward_port, f"backlog{n}", tally))
        tally.extra["sent_to_listeners"] = len(tally.acknowledged) - before
        server.proc.send_signal(signal.SIGTERM)
        server.proc.send_signal(signal.SIGCONT)
        server.proc.wait(timeout=180)  # (uvicorn ends by the signal it caught: -15)
    finally:
        for sock in peers:
            sock.close()
    log = server.log()
    assert "cut off" not in log, log[-3000:]
    server.start()  # what the deadline left in the WAL (if anything) is stored now
    deadline = time.monotonic() + 120
    while server.store_rows() < len(tally.acknowledged) and time.monotonic() < deadline:
        time.sleep(0.2)
    server.stop()
    rows = query_stopped_store(server.data_dir, "SELECT message FROM logs")
    tally.saw(r["message"] for r in rows)
    tally.report()
