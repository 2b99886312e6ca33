"""Fluent forward: a chunk id is a retry only when the records are the same too.

Fault: a forward client gives two different messages the same ``chunk`` id (a counter restarted
with the process, a fixed option, a bug), and they reach the server in one read. The server took
the second for a retry of the first: it acknowledged both and stored only the first. Across two
reads the same case was stored (the WAL's key index compares the records' fingerprint), so the
rule now is the same in both: a message is a retry when its id *and* records were seen (a real
retry, after a lost ack, is stored once). Read back through the query API and tallied.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import msgpack
import pytest
from tests.conftest import ServerProcess, free_port
from tests.faults.conftest import Tally

SERVICE = "fwchunk"
ALL_TIME = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    port = free_port()
    proc = ServerProcess(tmp_path_factory.mktemp("fwchunk") / "data", "--batch-max-age", "0.2",
                         "--forward", f"127.0.0.1:{port}")
    proc.forward_port = port  # type: ignore[attr-defined]
    proc.start()
    yield proc
    proc.stop()


def _message(chunk: str, *texts: str) -> bytes:
    now = int(time.time())
    return msgpack.packb(["fw.chunk", [[now, {"message": t, "service": SERVICE}] for t in texts], {"chunk": chunk}])


def _acks(conn: socket.socket, count: int) -> list[str]:
    unpacker = msgpack.Unpacker(raw=False)
    acks: list[str] = []
    conn.settimeout(60)
    while len(acks) < count:
        data = conn.recv(65536)
        if not data:
            break
        unpacker.feed(data)
        acks.extend(obj["ack"] for obj in unpacker)
    return acks


def _stored(server: ServerProcess, expected: int, timeout: float = 60.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        rows = server.query(f"service:{SERVICE}", limit=10_000, **ALL_TIME)["rows"]
        if len(rows) >= expected or time.monotonic() > deadline:
            return [r["message"] for r in rows]
        time.sleep(0.2)


def test_one_chunk_id_on_other_records_is_stored_and_a_true_retry_once(server: ServerProcess) -> None:
    tally = Tally("forward/chunk-id-reused")
    port = server.forward_port  # type: ignore[attr-defined]
    one_read = [_message("c1", "fwc a1", "fwc a2"), _message("c1", "fwc b1"),  # same id, other records
                _message("c1", "fwc a1", "fwc a2"),  # a true retry of the first, in the same read
                _message("c2", "fwc c1"), _message("c1", "fwc d1")]
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"".join(one_read))  # one write: the server reads them together
        assert _acks(conn, len(one_read)) == ["c1", "c1", "c1", "c2", "c1"]
    tally.ack(["fwc a1", "fwc a2", "fwc b1", "fwc c1", "fwc d1"])
    with socket.create_connection(("127.0.0.1", port)) as conn:  # across reads: retry, and new records
        for message, texts in ((_message("c2", "fwc c1"), []), (_message("c2", "fwc e1"), ["fwc e1"])):
            conn.sendall(message)
            assert _acks(conn, 1) == ["c2"]
            tally.ack(texts)
    tally.saw(_stored(server, len(tally.acknowledged)))
    tally.report()  # fails on a lost record, and on a retry stored twice
