"""Fluent forward against ``fluent-logger`` (Python), every mode of the spec, acks and the handshake.

fluent-logger sends Message mode (with its own EventTime for nanoseconds); it has no ack option,
so the test adds the spec's ``chunk`` option to the packet it builds and reads the server's
``{"ack": chunk}`` from the logger's own socket. The other modes and the shared-key handshake are
written here from the protocol specification (forward protocol v1) with msgpack.
"""

from __future__ import annotations

import gzip
import hashlib
import socket
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
from fluent import sender
from tests.conftest import ServerProcess, free_port

from .conftest import by_message, records


class AckingSender(sender.FluentSender):
    """fluent-logger's sender, with the spec's ``chunk`` option added to each Message-mode packet."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.chunks: list[str] = []

    def _make_packet(self, label: str, timestamp: Any, data: Any) -> bytes:
        tag = f"{self.tag}.{label}" if label else self.tag
        if self.nanosecond_precision and isinstance(timestamp, float):
            timestamp = sender.EventTime(timestamp)
        chunk = uuid.uuid4().hex
        self.chunks.append(chunk)
        return msgpack.packb((tag, timestamp, data, {"chunk": chunk}))


@pytest.fixture(scope="module")
def forward(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, int]]:
    """One server with a forward listener, and its port, for the tests that only send records of a
    service of their own and read those back."""
    port = free_port()
    server = ServerProcess(tmp_path_factory.mktemp("forward") / "data", "--batch-max-age", "0.2",
                           "--forward", f"127.0.0.1:{port}")
    try:
        yield server.start(), port
    finally:
        server.stop()


def _acks(sock: socket.socket, count: int, timeout: float = 30) -> list[str]:
    unpacker = msgpack.Unpacker(raw=False)
    acks: list[str] = []
    sock.settimeout(timeout)
    while len(acks) < count:
        data = sock.recv(65536)
        assert data, "the server closed the connection before acking"
        unpacker.feed(data)
        acks.extend(obj["ack"] for obj in unpacker)
    return acks


def test_fluent_logger_message_mode_with_acks(forward: tuple[ServerProcess, int]) -> None:
    server, port = forward
    log = AckingSender("app", host="127.0.0.1", port=port, nanosecond_precision=True, timeout=30)
    stamp = time.time() - 30
    for i in range(20):
        assert log.emit_with_time("checkout", stamp + i / 1000, {
            "message": f"fluent {i}", "service": "fluentsvc", "level": "warning", "order_id": i,
            "trace_id": "5759e988bd862e3fe1be46a994272793"})
    assert log.emit("checkout", {"log": "plain log key", "service": "fluentsvc"})
    assert sorted(_acks(log.socket, 21)) == sorted(log.chunks)  # acked after the WAL write
    log.close()
    rows = by_message(records(server, "service:fluentsvc", 21))
    assert len(rows) == 21
    first = rows["fluent 0"]
    assert first["tag"] == "app.checkout" and first["level"] == "WARN" and first["order_id"] == 0
    assert first["trace_id"] == "5759e988bd862e3fe1be46a994272793"
    assert rows["fluent 5"]["timestamp"] > first["timestamp"]  # EventTime kept sub-second order
    assert "plain log key" in rows


def _event_time(ns: int) -> msgpack.ExtType:
    return msgpack.ExtType(0, (ns // 1_000_000_000).to_bytes(4, "big") + (ns % 1_000_000_000).to_bytes(4, "big"))


def test_forward_packed_and_compressed_modes(forward: tuple[ServerProcess, int]) -> None:
    server, port = forward
    ns = time.time_ns() - 10_000_000_000
    entries = [[_event_time(ns + i), {"message": f"mode {i}", "service": "modes"}] for i in range(6)]
    packed = b"".join(msgpack.packb(e) for e in entries[2:4])
    compressed = gzip.compress(msgpack.packb(entries[4])) + gzip.compress(msgpack.packb(entries[5]))
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(msgpack.packb(["t.forward", entries[:2], {"chunk": "c1"}]))
        conn.sendall(msgpack.packb(["t.packed", packed, {"chunk": "c2", "size": 2}]))
        conn.sendall(msgpack.packb(["t.gzip", compressed, {"chunk": "c3", "compressed": "gzip"}]))
        conn.sendall(msgpack.packb(["t.int", int(ns / 1e9), {"message": "integer time", "service": "modes"}]))
        assert _acks(conn, 3) == ["c1", "c2", "c3"]
    rows = by_message(records(server, "service:modes", 7))
    assert {rows[f"mode {i}"]["tag"] for i in range(6)} == {"t.forward", "t.packed", "t.gzip"}
    assert rows["mode 3"]["tag"] == "t.packed" and rows["mode 5"]["tag"] == "t.gzip"
    assert rows["integer time"]["tag"] == "t.int"


def test_shared_key_handshake(server_factory) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    server: ServerProcess = server_factory("--batch-max-age", "0.2", "--forward", f"127.0.0.1:{port}",
                                           "--forward-shared-key", "s3cret")

    def connect(key: str) -> tuple[socket.socket, list[Any]]:
        conn = socket.create_connection(("127.0.0.1", port))
        conn.settimeout(30)
        unpacker = msgpack.Unpacker(raw=False)
        unpacker.feed(conn.recv(65536))
        helo = next(unpacker)
        assert helo[0] == "HELO"
        nonce = helo[1]["nonce"]
        salt = b"0123456789abcdef"
        digest = hashlib.sha512(salt + b"client-host" + nonce + key.encode()).hexdigest()
        conn.sendall(msgpack.packb(["PING", "client-host", salt, digest, "", ""]))
        unpacker.feed(conn.recv(65536))
        pong = next(unpacker)
        if pong[1]:
            server_proof = hashlib.sha512(salt + pong[3].encode() + nonce + key.encode()).hexdigest()
            assert pong[4] == server_proof  # the server knows the key too
        return conn, pong

    conn, pong = connect("wrong")
    assert pong[:3] == ["PONG", False, "shared key mismatch"]
    conn.settimeout(10)
    assert conn.recv(10) == b""  # and it hung up
    conn.close()

    conn, pong = connect("s3cret")
    assert pong[1] is True
    conn.sendall(msgpack.packb(["auth.ok", int(time.time()), {"message": "after handshake", "service": "hs"},
                                {"chunk": "k1"}]))
    assert _acks(conn, 1) == ["k1"]
    conn.close()
    assert records(server, "service:hs", 1)[0]["message"] == "after handshake"

    unauthenticated = socket.create_connection(("127.0.0.1", port))
    unauthenticated.settimeout(10)
    unauthenticated.recv(65536)  # HELO
    unauthenticated.sendall(msgpack.packb(["skip.handshake", int(time.time()), {"message": "sneaky"}]))
    assert unauthenticated.recv(10) == b""
    unauthenticated.close()
    server.ingest([{"message": "after the refused one"}])  # stored: an earlier record would be too
    assert server.store_rows() == 2


def test_forward_over_tls(server_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    port = free_port()
    server: ServerProcess = server_factory("--batch-max-age", "0.2", "--forward", f"127.0.0.1:{port}",
                                           "--forward-tls", "--listener-tls-cert", str(cert),
                                           "--listener-tls-key", str(key))
    ctx = ssl.create_default_context(cafile=str(cert))
    with socket.create_connection(("127.0.0.1", port)) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
        conn.sendall(msgpack.packb(["tls.tag", int(time.time()), {"message": "over tls", "service": "ftls"},
                                    {"chunk": "t1"}]))
        assert _acks(conn, 1) == ["t1"]
    assert records(server, "service:ftls", 1)[0]["tag"] == "tls.tag"


@pytest.mark.e2e
def test_ack_means_durable_and_a_full_wal_holds_the_sender(server_factory) -> None:  # type: ignore[no-untyped-def]
    """With the store paused the WAL fills up: acks stop (the sender is held, nothing is dropped),
    and after a restart exactly the acknowledged chunks are in the store."""
    port = free_port()
    server: ServerProcess = server_factory("--forward", f"127.0.0.1:{port}", "--pause-batcher",
                                           "--wal-max-mb", "1")
    acked_entries = 0
    held = False
    with socket.create_connection(("127.0.0.1", port)) as conn:
        for n in range(20):
            entries = b"".join(msgpack.packb([int(time.time()), {"message": f"chunk {n} entry {i} " + "x" * 100,
                                                                 "service": "full"}]) for i in range(2000))
            conn.sendall(msgpack.packb(["full", entries, {"chunk": f"c{n}"}]))
            while not held:
                try:
                    assert _acks(conn, 1, timeout=2) == [f"c{n}"]
                    acked_entries += 2000
                    break
                except TimeoutError:  # slow, or held back? the server says so in its log
                    held = "holding the sender back" in server.log()
            if held:
                break
        assert held, "a 1 MiB WAL took 20 chunks of 250 KiB without holding the sender"
    assert acked_entries >= 2000
    server.stop()
    restarted: ServerProcess = server_factory("--batch-max-age", "0.2", data_dir=server.data_dir)
    assert restarted.wait_rows(acked_entries) == acked_entries
    time.sleep(1)  # nothing more arrives: the held chunk was never acknowledged, never stored
    assert restarted.store_rows() == acked_entries


def test_good_messages_before_a_broken_one_are_kept(forward: tuple[ServerProcess, int]) -> None:
    server, port = forward
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(msgpack.packb(["ok.tag", int(time.time()), {"message": "kept", "service": "brk"},
                                    {"chunk": "g1"}]) + msgpack.packb(42))
        assert _acks(conn, 1) == ["g1"]
        assert conn.recv(10) == b""  # then the connection is closed
    assert records(server, "service:brk", 1)[0]["message"] == "kept"


def test_a_chunk_sent_again_is_stored_once(server_factory) -> None:  # type: ignore[no-untyped-def]
    """Fluentd resends a chunk under the same id when its ack was lost (here: a kill -9 of the
    server after the chunk was stored); it is acked again and stored once. The same id with other
    entries is a new chunk and is stored."""
    port = free_port()
    server: ServerProcess = server_factory("--batch-max-age", "0.2", "--forward", f"127.0.0.1:{port}")
    now = int(time.time())
    entries = [[now, {"message": f"chunk line {i}", "service": "fwd-once"}] for i in range(20)]
    chunk = uuid.uuid4().hex
    message = msgpack.packb(["fwd", entries, {"chunk": chunk}])
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(message + message)  # twice in one read
        assert _acks(conn, 2) == [chunk, chunk]
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(message)  # again on a new connection
        assert _acks(conn, 1) == [chunk]
    assert len(records(server, "service:fwd-once", 20)) == 20
    server.kill9()
    server.start()
    other = [[now, {"message": "another chunk, same id", "service": "fwd-once"}]]
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(message + msgpack.packb(["fwd", other, {"chunk": chunk}]))
        assert _acks(conn, 2) == [chunk, chunk]
    assert len(records(server, "service:fwd-once", 21)) == 21
    assert len(records(server, "service:fwd-once", 22, timeout=3)) == 21


def test_a_latin1_string_costs_nothing_but_its_bytes(forward: tuple[ServerProcess, int]) -> None:
    """A msgpack str that is not UTF-8 (a legacy app's Latin-1 'café') is stored with U+FFFD for the
    bad byte; the chunk is acked and every record of it stored. (It made the whole chunk fail and
    the connection close without an ack, so Fluentd resent it forever.)"""
    server, port = forward
    pack = msgpack.packb
    latin1 = b"\x83" + pack("service") + pack("latin1svc") + pack("id") + pack(1) + pack("message") + b"\xa4caf\xe9"
    good = pack({"service": "latin1svc", "id": 2, "message": "plain"})
    now = int(time.time())
    entries = b"\x92" + b"\x92" + pack(now) + latin1 + b"\x92" + pack(now) + good
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(b"\x93" + pack("app.latin1") + entries + pack({"chunk": "latin1-chunk"}))
        assert _acks(conn, 1) == ["latin1-chunk"]
    rows = by_message(records(server, "service:latin1svc", 2))
    assert set(rows) == {"caf\ufffd", "plain"}


def test_an_acked_record_whose_field_cannot_be_folded_is_stored_not_dropped(
        forward: tuple[ServerProcess, int]) -> None:
    """Forward has no way to say a record was refused: the chunk is acked whole. A record whose
    ``timestamp`` is not a time, or whose ``http`` status is not a number, was refused after that
    ack (a DEBUG line, a counter): acknowledged and lost. It is stored, the value it could not take
    kept aside as sent (``timestamp_attribute``) and the reason in ``forward_error``."""
    from tests.faults.conftest import Tally

    server, port = forward
    log = AckingSender("app", host="127.0.0.1", port=port, nanosecond_precision=True, timeout=30)
    stamp = time.time() - 30
    bad = [{"timestamp": "07/Dec/2026:10:00:00 +0000"}, {"@timestamp": "yesterday"},
           {"http": {"status": "abc", "method": "GET"}}, {"timestamp": 1e30}, {},
           {"timestamp": "2026-11-01T12:00:00Z", "http.status": -1}]
    tally = Tally("forward records acked with a field that cannot be folded")
    for i, extra in enumerate(bad):
        rid = f"fwd-unfoldable-{i}"
        assert log.emit_with_time("checkout", stamp, {"message": f"unfoldable {i}", "service": "fwd-unfoldable",
                                                       "rid": rid, **extra})
        tally.ack([rid])
    assert len(_acks(log.socket, len(bad))) == len(bad)
    log.close()
    rows = records(server, 'service:"fwd-unfoldable"', len(bad), timeout=30)
    tally.saw(r["rid"] for r in rows)
    tally.report()
    got = {r["message"]: r for r in rows}
    assert got["unfoldable 0"]["timestamp_attribute"] == "07/Dec/2026:10:00:00 +0000"
    assert "timestamp" in got["unfoldable 0"]["forward_error"]
    assert got["unfoldable 2"]["http_attribute"] == {"status": "abc", "method": "GET"}
    assert "forward_error" not in got["unfoldable 4"]
    # only what does not fold is set aside: the record keeps its own time
    assert got["unfoldable 5"]["timestamp"] == "2026-11-01T12:00:00.000000Z"
    assert got["unfoldable 5"]["http.status_attribute"] == -1
