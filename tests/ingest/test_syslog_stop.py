"""A listener's stop writes what TCP peers already sent: the lines of an open connection still in
the socket's buffer (unterminated last line included), and the connections the kernel completed
but the server had not accepted yet (the listen backlog). The real listeners, Ingestor and WAL in
one event loop: the peers connect and send from the loop's own thread, so the loop cannot accept
or read anything between their sends and the stop; nothing here depends on timing.
(The whole server under SIGTERM: tests/faults/test_listener_stop.py.)
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import msgpack
import orjson
import pytest
import uvloop

from logharbor.server.engine.wal import WriteAheadLog
from logharbor.server.ingest.base import Ingestor
from logharbor.server.ingest.forward import ForwardIngest
from logharbor.server.ingest.syslog import SyslogIngest


def stored_messages(wal: WriteAheadLog) -> list[str]:
    rows = [orjson.loads(line) for entry in wal.read(wal.start_position(), 1 << 30)
            for line in entry.payload.split(b"\n") if line]
    return [row["message"] for row in rows]


async def until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop],
                         ids=["asyncio", "uvloop"])  # the server runs on uvloop
def test_a_stop_writes_what_open_and_waiting_connections_sent(tmp_path: Path, loop_factory) -> None:  # type: ignore[no-untyped-def]
    wal = WriteAheadLog(tmp_path / "wal", fsync=False)
    wal.open()
    ingestor = Ingestor(wal)

    async def run() -> None:
        syslog = SyslogIngest(tcp="127.0.0.1:0")
        forward = ForwardIngest(address="127.0.0.1:0")
        await syslog.start(ingestor)
        await forward.start(ingestor)
        syslog_at, forward_at = ("127.0.0.1", syslog.bound["tcp"][1]), ("127.0.0.1", forward.bound[1])  # type: ignore[index]
        peers = [socket.create_connection(syslog_at), socket.create_connection(forward_at)]
        peers[0].sendall(b"<14>1 - h app - - - open-first\n")
        await until(lambda: "open-first" in stored_messages(wal), "the first line")
        await until(lambda: forward.server is not None and forward.server.streams, "the forward accept")
        # from here on the loop does not run until the stop: nothing below is accepted or read
        peers[0].sendall(b"".join(b"<14>1 - h app - - - open-%d\n" % i for i in range(500))
                         + b"<14>1 - h app - - - open-unterminated")
        peers[1].sendall(msgpack.packb(["app", [[1_796_630_400, {"message": f"fwd-open-{i}"}]
                                                for i in range(500)]]))
        for n in range(3):
            waiting = socket.create_connection(syslog_at)  # the kernel completes it; no accept yet
            waiting.sendall(b"".join(b"<14>1 - h app - - - backlog%d-%d\n" % (n, i) for i in range(200)))
            peers.append(waiting)
        waiting = socket.create_connection(forward_at)
        waiting.sendall(msgpack.packb(["app", [[1_796_630_400, {"message": f"fwd-backlog-{i}"}]
                                                for i in range(200)]]))
        peers.append(waiting)
        started = len(syslog.servers[0].streams)
        await asyncio.gather(syslog.stop(time.monotonic() + 30), forward.stop(time.monotonic() + 30))
        assert started == 1  # the three syslog peers were still waiting in the backlog at the stop
        for sock in peers:
            sock.close()

    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(run())
        messages = stored_messages(wal)
    finally:
        ingestor.close()
        wal.close()
    expected = {"open-first", "open-unterminated", *(f"open-{i}" for i in range(500)),
                *(f"backlog{n}-{i}" for n in range(3) for i in range(200)),
                *(f"fwd-open-{i}" for i in range(500)), *(f"fwd-backlog-{i}" for i in range(200))}
    assert len(messages) == len(set(messages)), "a line was written twice"
    missing = expected - set(messages)
    assert not missing, f"{len(missing)} lines lost at the stop, e.g. {sorted(missing)[:5]}"


@pytest.mark.parametrize("loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop],
                         ids=["asyncio", "uvloop"])
def test_a_stop_writes_the_datagrams_queued_on_the_udp_socket(tmp_path: Path, loop_factory) -> None:  # type: ignore[no-untyped-def]
    """Datagrams the kernel queued on the UDP socket before the stop are written, not discarded
    with the closing socket. Sent from the loop's own thread right before the stop, so the
    transport reads none of them first (before the fix, every one was lost)."""
    wal = WriteAheadLog(tmp_path / "wal", fsync=False)
    wal.open()
    ingestor = Ingestor(wal)
    sent = [f"udp-{i}" for i in range(3000)]

    async def run() -> None:
        syslog = SyslogIngest(udp="127.0.0.1:0")
        await syslog.start(ingestor)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for text in sent:  # ~60 bytes each: well inside the socket's buffer
                sender.sendto(f"<14>1 - h app - - - {text}".encode(), syslog.bound["udp"])
        await syslog.stop(time.monotonic() + 30)

    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(run())
        messages = stored_messages(wal)
    finally:
        ingestor.close()
        wal.close()
    assert len(messages) == len(set(messages)), "a datagram was written twice"
    missing = set(sent) - set(messages)
    assert not missing, f"{len(missing)} datagrams lost at the stop, e.g. {sorted(missing)[:5]}"
