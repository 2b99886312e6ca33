"""A rollback onto a WAL a newer release wrote: refused, untouched, and every record still there.

Fault: records are acknowledged (fsync'd in the WAL) while the batcher is paused, the server is
killed with ``kill -9`` so they are only in the WAL, and its segments are then given the magic of
a newer format (``LHWAL03``), as a newer release would have left them when the operator rolled
back. This release must refuse to start, naming a segment and the versions it reads, and leave
every byte of the data directory as it was (before this fix, the last segment was scanned as
damaged: its bytes quarantined and the segment cut). "The newer release" is then simulated by
restoring the magic: it starts and stores every acknowledged record, once.
"""

from __future__ import annotations

import pytest
from tests.conftest import ServerProcess
from tests.faults.conftest import Tally
from tests.faults.test_wal_damage import SERVICE, send, stored_ids
from tests.upgrade import tree

from logharbor.framing import MAGIC_SIZE, MAGIC_V2


def test_a_newer_wal_is_refused_untouched_then_read_whole(server_factory) -> None:  # type: ignore[no-untyped-def]
    tally = Tally("newer-wal/rollback")
    server = server_factory("--pause-batcher", "--wal-segment-mb", "1")
    acked = send(server, 0, 3000)
    assert len(acked) == 3000, server.log()[-2000:]
    tally.ack(acked)
    server.kill9()  # every record is acknowledged and only in the WAL

    segments = sorted((server.data_dir / "wal").glob("*.wal"))
    assert len(segments) >= 2, segments
    for segment in segments:
        data = segment.read_bytes()
        assert data[:MAGIC_SIZE] == MAGIC_V2
        segment.write_bytes(b"LHWAL03\n" + data[MAGIC_SIZE:])
    before = tree(server.data_dir)

    rolled_back = ServerProcess(server.data_dir, "--batch-max-age", "0.2")
    with pytest.raises(RuntimeError) as failed:
        rolled_back.start(timeout=120)
    output = str(failed.value)
    line = next((ln for ln in output.splitlines() if "cannot start" in ln), "")
    assert str(segments[0]) in line and "LHWAL03" in line and "LHWAL01, LHWAL02" in line, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    assert tree(server.data_dir) == before  # not one byte cut, quarantined or written

    for segment in segments:  # the newer release, which reads its own format
        data = segment.read_bytes()
        segment.write_bytes(MAGIC_V2 + data[MAGIC_SIZE:])
    again = server_factory("--batch-max-age", "0.2", data_dir=server.data_dir)
    tally.saw(stored_ids(again, len(acked)))
    assert not (server.data_dir / "wal" / "quarantine").exists()
    tally.extra.update(segments=len(segments), service=SERVICE)
    tally.report()
