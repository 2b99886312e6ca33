"""The WAL when writing fails: a full disk (a real tmpfs) while a segment is created or an entry is
written, and an fsync that fails with EIO.

What must hold each time: an entry whose future failed was not acknowledged and is not half
present (no torn or damaged bytes are left for the next start to trip over), every acknowledged
entry is read back exactly once after a restart, no sequence number is handed out twice, and the
WAL takes entries again once the fault is gone, without a restart. Counted with :class:`Tally`:
acknowledged = futures that resolved, stored = entries read back from the reopened WAL.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import orjson
import pytest
from tests.faults.conftest import Tally, fill_to
from tests.server.wal_damage import build_v1, read_everything

from logharbor.server.engine.wal import WalNoSpace, WriteAheadLog
from logharbor.server.engine.wal.tools import verify_report

MiB = 1024 * 1024


class Writer:
    """Submits numbered entries and remembers which were acknowledged (and with what number)."""

    def __init__(self, wal: WriteAheadLog, tally: Tally) -> None:
        self.wal, self.tally = wal, tally
        self.next_id = 0
        self.seqs: list[int] = []

    def submit(self, size: int) -> Future[int]:
        body = orjson.dumps({"id": f"w{self.next_id:05d}", "pad": "z" * size})
        self.next_id += 1
        return self.wal.submit(body)

    def write(self, size: int) -> int:
        """One entry; its sequence number once acknowledged."""
        ident = f"w{self.next_id:05d}"
        seq = self.submit(size).result(timeout=30)
        self.tally.ack([ident])
        self.seqs.append(seq)
        return seq


def read_back(wal_dir: Path, tally: Tally) -> list[int]:
    """Reopen the WAL as a restarted server would, tally what it holds; its sequence numbers."""
    wal = WriteAheadLog(wal_dir)
    wal.open()
    try:
        entries = read_everything(wal)
    finally:
        wal.close()
    tally.saw(orjson.loads(e.payload)["id"] for e in entries)
    return [e.seq for e in entries]


def assert_consistent(wal_dir: Path) -> None:
    """No damage, no torn tail, nothing set aside: what failed left nothing behind."""
    report = verify_report(wal_dir)
    assert report["damaged_spans"] == 0 and report["torn_tail_bytes"] == 0 and not report["quarantine"], report


@pytest.fixture
def wal_on_small_fs(small_fs: Path) -> Iterator[tuple[WriteAheadLog, Path]]:
    wal = WriteAheadLog(small_fs / "wal", segment_bytes=MiB, reclaim_bytes=None)
    wal.open()
    yield wal, small_fs
    wal.close()


def test_enospc_when_a_new_segment_is_created(wal_on_small_fs: tuple[WriteAheadLog, Path]) -> None:
    wal, fs = wal_on_small_fs
    tally = Tally("wal-write/enospc-new-segment")
    writer = Writer(wal, tally)
    while wal.durable.offset < MiB:  # fill the live segment: the next batch must start a new one
        writer.write(100_000)
    segments_before = sorted(p.name for p in (fs / "wal").glob("*.wal"))
    ballast = fill_to(fs, 0)
    for _ in range(3):
        with pytest.raises(WalNoSpace):
            writer.submit(1000).result(timeout=30)
    assert sorted(p.name for p in (fs / "wal").glob("*.wal")) == segments_before  # no half-made segment
    ballast.unlink()
    for _ in range(5):  # space is back: the WAL goes on by itself
        writer.write(1000)
    wal.close()
    assert_consistent(fs / "wal")
    seqs = read_back(fs / "wal", tally)
    assert seqs == sorted(set(seqs)) and writer.seqs == seqs  # no number twice, none of a failed entry
    tally.extra["refused"] = 3
    tally.report()


def test_enospc_in_the_middle_of_an_entry(wal_on_small_fs: tuple[WriteAheadLog, Path]) -> None:
    wal, fs = wal_on_small_fs
    tally = Tally("wal-write/enospc-mid-entry")
    writer = Writer(wal, tally)
    for _ in range(5):
        writer.write(20_000)
    ballast = fill_to(fs, 64 * 1024)
    with pytest.raises(WalNoSpace) as failed:  # 400 KB into 64 KiB of room: cut short by the disk
        writer.submit(400_000).result(timeout=30)
    assert failed.value.errno == errno.ENOSPC
    ballast.unlink()
    for _ in range(5):
        writer.write(20_000)
    wal.close()
    assert_consistent(fs / "wal")  # the half-written entry was cut, not left as a torn middle
    seqs = read_back(fs / "wal", tally)
    assert seqs == writer.seqs and seqs == sorted(set(seqs))
    tally.extra["refused"] = 1
    tally.report()


def test_fsync_failure_is_not_acknowledged_and_the_file_is_not_reused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """EIO from fsync cannot be made on a tmpfs, so fdatasync is replaced for one call (the write
    itself really happens). After it the page cache cannot be trusted (fsyncgate): the entry is
    refused, the segment is sealed at its last durable offset and writing moves to a new one."""
    tally = Tally("wal-write/fsync-eio")
    wal = WriteAheadLog(tmp_path / "wal")
    wal.open()
    writer = Writer(wal, tally)
    for _ in range(3):
        writer.write(500)
    real = os.fdatasync
    calls = {"n": 0}

    def failing_once(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(errno.EIO, "Input/output error")
        real(fd)

    monkeypatch.setattr(os, "fdatasync", failing_once)
    before = sorted(p.name for p in (tmp_path / "wal").glob("*.wal"))
    with pytest.raises(OSError) as failed:
        writer.submit(500).result(timeout=30)
    assert failed.value.errno == errno.EIO
    after_seq = writer.write(500)
    assert after_seq == writer.seqs[-2] + 2  # the refused entry's number is not reused
    assert len(sorted((tmp_path / "wal").glob("*.wal"))) == len(before) + 1  # a new segment
    for _ in range(3):
        writer.write(500)
    wal.close()
    assert_consistent(tmp_path / "wal")
    assert read_back(tmp_path / "wal", tally) == writer.seqs
    tally.extra["refused"] = 1
    tally.report()


def test_a_full_disk_at_start_up_does_not_stop_the_wal_opening(small_fs: Path) -> None:
    """An old-format last segment makes the WAL start a new segment at start-up; with no room for
    it the WAL still opens, hands out what it holds, refuses writes until there is room, then
    takes them."""
    tally = Tally("wal-write/enospc-at-start")
    old = build_v1(small_fs / "wal", 8)
    tally.ack(f"e{i:05d}" for i in range(8))  # what an older server acknowledged
    ballast = fill_to(small_fs, 0)
    wal = WriteAheadLog(small_fs / "wal")
    wal.open()
    writer = Writer(wal, tally)
    assert [orjson.loads(e.payload)["id"] for e in read_everything(wal)] == [f"e{i:05d}" for i in range(8)]
    with pytest.raises(WalNoSpace):
        writer.submit(100).result(timeout=30)
    ballast.unlink()
    for _ in range(3):
        writer.write(100)
    wal.close()
    assert sorted(small_fs.joinpath("wal").glob("*.wal"))[0] == old
    read_back(small_fs / "wal", tally)
    tally.extra["refused"] = 1
    tally.report()
