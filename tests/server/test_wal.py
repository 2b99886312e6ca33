"""The write-ahead log on real files: group commit, rotation, torn tails, limits, keys, reclaim."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.server.wal_damage import payload, read_everything

from logharbor.server.wal import WalFull, WalLocked, WalPosition, WriteAheadLog
from logharbor.server.wal.framing import MAGIC_V2
from logharbor.server.wal.segments import lock_directory


def open_wal(path: Path, **kw) -> WriteAheadLog:  # type: ignore[no-untyped-def]
    wal = WriteAheadLog(path, **kw)
    wal.open()
    return wal


def read_all(wal: WriteAheadLog) -> list[tuple[int, bytes]]:
    return [(e.seq, e.payload) for e in read_everything(wal)]


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


def test_new_segments_are_written_in_the_new_format(tmp_path: Path) -> None:
    wal = open_wal(tmp_path)
    wal.submit(b"x").result(timeout=10)
    wal.close()
    (segment,) = tmp_path.glob("*.wal")
    assert segment.read_bytes()[:8] == MAGIC_V2


def test_concurrent_submits_share_fsyncs(tmp_path: Path) -> None:
    wal = open_wal(tmp_path)
    futures = [wal.submit(b"x" * 10) for _ in range(500)]
    assert sorted(f.result(timeout=10) for f in futures) == list(range(1, 501))
    assert wal.fsyncs < 500  # group commit: many entries per fsync
    wal.close()


@pytest.mark.parametrize("cut", [1, 7, 16, 30])
def test_torn_tail_is_truncated_and_earlier_entries_survive(tmp_path: Path, cut: int,
                                                           caplog: pytest.LogCaptureFixture) -> None:
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
    assert again.quarantine.torn_tails == 1 and again.quarantine.corrupt_entries == 0
    assert not list(again.quarantine_dir.glob("*.bad"))  # never acknowledged: not kept
    assert any("torn tail" in r.message and "truncated" in r.message for r in caplog.records)
    assert again.submit(b"after").result(timeout=10) == 3  # never durable, so never stored: reusable
    assert [p for _, p in read_all(again)][-1] == b"after"
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


# -- keys, hooks, roll, lock -----------------------------------------------------------------------

def test_keys_are_stored_checked_and_listed(tmp_path: Path) -> None:
    wal = open_wal(tmp_path, segment_bytes=1024 * 1024)
    seqs = [wal.submit(b"p" * 300_000, key=f"batch-{i}".encode() if i % 2 else b"").result(timeout=10)
            for i in range(8)]
    assert [(e.seq, e.key) for e in read_everything(wal)] == [
        (s, f"batch-{i}".encode() if i % 2 else b"") for i, s in enumerate(seqs)]
    assert list(wal.iter_keys()) == [(s, f"batch-{i}".encode()) for i, s in enumerate(seqs) if i % 2]
    with pytest.raises(ValueError, match="255"):
        wal.submit(b"x", key=b"k" * 256)
    wal.close()
    again = open_wal(tmp_path, segment_bytes=1024 * 1024)  # keys survive a restart (every segment)
    assert list(again.iter_keys()) == [(s, f"batch-{i}".encode()) for i, s in enumerate(seqs) if i % 2]
    again.close()


def test_before_remove_sees_the_keys_of_segments_about_to_go(tmp_path: Path) -> None:
    wal = open_wal(tmp_path, segment_bytes=1024 * 1024)
    seen: list[list[tuple[int, bytes]]] = []

    def hook(pairs: list[tuple[int, bytes]]) -> None:
        assert all((tmp_path / f"{s:020d}.wal").exists() for s in wal.iter_segments())
        seen.append(pairs)

    wal.before_remove = hook
    seqs = [wal.submit(b"q" * 400_000, key=f"k{i}".encode()).result(timeout=10) for i in range(6)]
    wal.release(read_everything(wal)[-1].end)
    assert sorted(p for batch in seen for p in batch) == [(s, f"k{i}".encode()) for i, s in enumerate(seqs)]
    assert list(wal.iter_keys()) == []  # all of it is gone
    wal.close()


def test_a_failing_hook_keeps_the_segments(tmp_path: Path) -> None:
    wal = open_wal(tmp_path)
    wal.submit(b"x", key=b"k").result(timeout=10)

    def hook(pairs: list[tuple[int, bytes]]) -> None:
        raise RuntimeError("the keys store is down")

    wal.before_remove = hook
    wal.release(read_everything(wal)[-1].end)
    assert list(wal.iter_keys()) == [(1, b"k")]  # nothing deleted before the keys were safe
    wal.before_remove = None
    wal.roll()
    assert list(wal.iter_keys()) == []
    wal.close()


def test_roll_lets_release_delete_everything_stored(tmp_path: Path) -> None:
    wal = open_wal(tmp_path, reclaim_bytes=None)  # only explicit rolls
    for i in range(5):
        wal.submit(payload(i)).result(timeout=10)
    end = read_everything(wal)[-1].end
    wal.release(end)
    assert wal.disk_bytes() > len(MAGIC_V2)  # live and never rolled: the bytes stay
    wal.roll()
    assert wal.disk_bytes() == len(MAGIC_V2)  # a fresh empty segment is all that is left
    assert len(list(tmp_path.glob("*.wal"))) == 1
    assert wal.submit(b"later").result(timeout=10) == 6
    wal.close()


def test_release_reclaims_the_live_segment_once_stored(tmp_path: Path) -> None:
    """A slow trickle never fills a 64 MiB segment: its space is freed batch by batch."""
    wal = open_wal(tmp_path, reclaim_bytes=1024 * 1024)
    pos = wal.start_position()
    for _ in range(20):
        for i in range(10):
            wal.submit(payload(i, 2000)).result(timeout=10)
        got = wal.read(pos, 1 << 30)
        pos = got.end
        wal.release(pos)
        assert wal.disk_bytes() < 64 * 1024  # what is stored does not stay
    assert wal.rolls >= 20
    wal.close()


def test_the_directory_is_locked_while_open(tmp_path: Path) -> None:
    wal = open_wal(tmp_path)
    with pytest.raises(WalLocked, match=f"process {os.getpid()}"):
        lock_directory(tmp_path)
    wal.close()
    open_wal(tmp_path).close()  # free again once closed
