"""The write-ahead log on real files: group commit, rotation, torn tails, limits."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from logharbor.server.wal import WalFull, WalPosition, WriteAheadLog


def open_wal(path: Path, **kw) -> WriteAheadLog:  # type: ignore[no-untyped-def]
    wal = WriteAheadLog(path, **kw)
    wal.open()
    return wal


def read_all(wal: WriteAheadLog) -> list[tuple[int, bytes]]:
    return [(e.seq, e.payload) for e in wal.read(wal.start_position(), 1 << 40)]


def test_entries_come_back_in_order_across_segments(tmp_path: Path) -> None:
    wal = open_wal(tmp_path, segment_bytes=1024 * 1024)
    payloads = [os.urandom(100_000) for _ in range(25)]
    seqs = [wal.submit(p).result(timeout=10) for p in payloads]
    assert seqs == list(range(1, 26))
    assert len(list(wal.iter_segments())) >= 2
    assert [p for _, p in read_all(wal)] == payloads
    wal.close()
    again = open_wal(tmp_path, segment_bytes=1024 * 1024)
    assert [p for _, p in read_all(again)] == payloads
    assert again.submit(b"next").result(timeout=10) == 26
    again.close()


def test_concurrent_submits_share_fsyncs(tmp_path: Path) -> None:
    wal = open_wal(tmp_path)
    futures = [wal.submit(b"x" * 10) for _ in range(500)]
    assert sorted(f.result(timeout=10) for f in futures) == list(range(1, 501))
    assert wal.fsyncs < 500  # group commit: many entries per fsync
    wal.close()


@pytest.mark.parametrize("cut", [1, 7, 16, 30])
def test_torn_tail_is_truncated_and_earlier_entries_survive(tmp_path: Path, cut: int) -> None:
    wal = open_wal(tmp_path)
    for i in range(3):
        wal.submit(f"entry-{i}".encode() * 5).result(timeout=10)
    wal.close()
    segment = next(tmp_path.glob("*.wal"))
    size = segment.stat().st_size
    with open(segment, "r+b") as fh:  # tear the last entry
        fh.truncate(size - cut)
    again = open_wal(tmp_path)
    assert [p for _, p in read_all(again)] == [b"entry-0" * 5, b"entry-1" * 5]
    assert again.submit(b"after").result(timeout=10) == 3
    assert [p for _, p in read_all(again)][-1] == b"after"
    again.close()


def test_corrupted_last_entry_is_dropped_by_crc(tmp_path: Path) -> None:
    wal = open_wal(tmp_path)
    wal.submit(b"good").result(timeout=10)
    wal.submit(b"will be flipped").result(timeout=10)
    wal.close()
    segment = next(tmp_path.glob("*.wal"))
    data = bytearray(segment.read_bytes())
    data[-3] ^= 0xFF
    segment.write_bytes(bytes(data))
    again = open_wal(tmp_path)
    assert [p for _, p in read_all(again)] == [b"good"]
    again.close()


def test_full_wal_refuses_and_release_frees_space(tmp_path: Path) -> None:
    wal = open_wal(tmp_path, segment_bytes=1024 * 1024, max_bytes=3 * 1024 * 1024)
    for _ in range(6):  # 3.0 MB of a 3 MiB limit
        wal.submit(b"z" * 500_000).result(timeout=10)
    with pytest.raises(WalFull):
        wal.submit(b"z" * 500_000)
    entries = wal.read(wal.start_position(), 1 << 40)
    wal.release(entries[-1].end)
    assert wal.backlog_bytes() < 1024 * 1024
    wal.submit(b"z" * 500_000).result(timeout=10)
    wal.close()


def test_read_stops_at_durable_end(tmp_path: Path) -> None:
    wal = open_wal(tmp_path)
    wal.submit(b"a").result(timeout=10)
    first = wal.read(wal.start_position(), 1 << 20)
    assert len(first) == 1
    assert wal.read(first[-1].end, 1 << 20) == []
    assert not wal.wait_for_data(first[-1].end, timeout=0.05)
    wal.submit(b"b").result(timeout=10)
    assert wal.wait_for_data(first[-1].end, timeout=5)
    assert [e.payload for e in wal.read(first[-1].end, 1 << 20)] == [b"b"]
    assert first[-1].end > WalPosition(0, 0)
    wal.close()
