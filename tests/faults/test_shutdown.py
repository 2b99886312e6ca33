"""SIGTERM with records in the WAL: the batcher flushes at once (no waiting out the batch age),
within the shutdown deadline; when the store cannot take them in time, the log says what stays in
the WAL and the next start stores it.

No wall-clock assertion: the batch age (60 s) is longer than the deadline (20 s), so a flush that
waited for the age would leave records in the WAL, and the store is read directly after the
process ended, before any restart could replay them.
"""

from __future__ import annotations

import signal
from pathlib import Path

import orjson
import pytest
from tests.conftest import ServerProcess
from tests.faults.conftest import Tally, fill_to
from tests.server.store_probe import query_stopped_store

RECORDS = 3_000


def post(server: ServerProcess, tally: Tally, service: str, first: int, count: int) -> None:
    with server.client(headers={"content-type": "application/x-ndjson"}) as client:
        for start in range(first, first + count, 500):
            ids = [f"{service}-{i}" for i in range(start, min(first + count, start + 500))]
            body = b"\n".join(orjson.dumps({"service": service, "rid": rid, "message": f"at shutdown {rid}"})
                              for rid in ids)
            response = client.post("/api/v1/logs", content=body)
            assert response.status_code == 200, response.text
            tally.ack(ids)


def terminate(server: ServerProcess) -> int:
    """SIGTERM and wait for the process to end by itself; its exit status."""
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    return server.proc.wait(timeout=300)


def test_sigterm_flushes_at_once_within_the_deadline(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", "--batch-max-age", "60", "--shutdown-timeout", "20").start()
    tally = Tally("SIGTERM with a 60 s batch age and a 20 s deadline")
    post(server, tally, "flush", 0, RECORDS)
    assert server.store_rows() == 0  # still waiting for the batch age: all of it is in the WAL
    terminate(server)
    assert "shutdown deadline" not in server.log(), server.log()[-2000:]
    rows = query_stopped_store(server.data_dir, "SELECT JSONExtractString(attributes, 'rid') AS rid FROM logs")
    tally.saw(r["rid"] for r in rows)
    tally.report()


@pytest.mark.parametrize("small_fs", ["160m"], indirect=True)
def test_what_the_deadline_leaves_is_logged_and_stored_at_the_next_start(small_fs: Path) -> None:
    server = ServerProcess(small_fs / "data", "--batch-max-age", "0.2", "--shutdown-timeout", "3",
                           "--disk-min-free-mb", "0")
    server.log_path = small_fs.parent / "server.log"  # the log is not on the disk that fills
    server.start()
    tally = Tally("SIGTERM while the store's disk is full (deadline 3 s)")
    post(server, tally, "kept", 0, 1_000)
    assert server.wait_rows(1_000) >= 1_000
    # The second start waits out a 60 s batch age, so "left" is certainly still in the WAL (and not
    # already stored by a fast machine) when the disk fills and SIGTERM asks for the flush.
    server.stop()
    server.extra_args[server.extra_args.index("--batch-max-age") + 1] = "60"
    server.start()
    post(server, tally, "left", 0, RECORDS)  # acknowledged: in the WAL; the store then meets a full disk
    assert server.store_rows() == 1_000
    ballast = fill_to(small_fs, 0)
    terminate(server)
    log = server.log()
    assert "shutdown deadline (3 s) passed" in log and "inserted at the next start" in log, log[-3000:]
    ballast.unlink()
    server.extra_args[server.extra_args.index("--batch-max-age") + 1] = "0.2"
    server.start()
    assert server.wait_rows(1_000 + RECORDS) >= 1_000 + RECORDS
    server.stop()
    rows = query_stopped_store(server.data_dir, "SELECT JSONExtractString(attributes, 'rid') AS rid FROM logs")
    tally.saw(r["rid"] for r in rows)
    tally.report()
