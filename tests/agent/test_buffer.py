"""Sink buffers: bounded, ordered, and the disk buffer durable across a crash."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.agent.conftest import blocked_in, wait_for

from logharbor.agent.buffer import BufferClosed, DiskBuffer, MemoryBuffer
from logharbor.agent.types import Encoded


def item(i: int, size: int = 1000) -> Encoded:
    return Encoded(f"{i:08d}".encode().ljust(size, b"x"), 1, None)


def test_memory_buffer_blocks_when_full_until_a_commit() -> None:
    buf = MemoryBuffer(3000, "block")
    for i in range(3):
        assert buf.put(item(i))
    done = threading.Event()

    def writer() -> None:
        buf.put(item(3))
        done.set()

    producer = threading.Thread(target=writer, daemon=True)
    producer.start()
    assert wait_for(lambda: done.is_set() or blocked_in(producer, MemoryBuffer.put), 10)
    assert not done.is_set()  # full: the producer waits (backpressure)
    got = buf.get(0.1)
    assert got is not None and got.payload.startswith(b"00000000")
    buf.commit([got])
    assert done.wait(2)
    assert buf.size() == (3000, 3)


def test_memory_buffer_drop_newest_refuses_and_close_is_not_a_drop() -> None:
    buf = MemoryBuffer(2000, "drop_newest")
    assert buf.put(item(0)) and buf.put(item(1))
    assert buf.put(item(2)) is False
    buf.close()
    try:
        buf.put(item(3))
    except BufferClosed:
        pass
    else:
        raise AssertionError("a closed buffer must not pretend to have taken or dropped an item")


def test_disk_buffer_replays_what_was_not_committed_after_a_crash(tmp_path: Path) -> None:
    buf = DiskBuffer(tmp_path / "b", 1 << 20, "block")
    for i in range(10):
        buf.put(item(i))
    first = [buf.get(0) for _ in range(4)]
    buf.commit(first[2:])  # delivered out of order: the position cannot move yet
    buf.commit(first[:2])
    assert buf.get(0) is not None  # handed out, never committed: must come back
    # crash: no close
    again = DiskBuffer(tmp_path / "b", 1 << 20, "block")
    got = []
    while (x := again.get(0)) is not None:
        got.append(int(x.payload[:8]))
    assert got == list(range(4, 10))
    assert again.size()[1] == 6


def test_disk_buffer_cuts_a_torn_tail(tmp_path: Path) -> None:
    buf = DiskBuffer(tmp_path / "b", 1 << 20, "block")
    for i in range(3):
        buf.put(item(i))
    seg = sorted((tmp_path / "b").glob("*.lhb"))[-1]
    with open(seg, "ab") as fh:
        fh.write(b"\x10\x00\x00\x00garbage")  # a write that was cut by the crash
    again = DiskBuffer(tmp_path / "b", 1 << 20, "block")
    got = [int(x.payload[:8]) for x in iter(lambda: again.get(0), None)]
    assert got == [0, 1, 2]
    again.put(item(3))
    assert int(again.get(0).payload[:8]) == 3  # type: ignore[union-attr]


def test_disk_buffer_is_bounded_and_removes_delivered_segments(tmp_path: Path) -> None:
    buf = DiskBuffer(tmp_path / "b", 256 * 1024, "drop_newest")
    taken = sum(buf.put(item(i, 10_000)) for i in range(100))
    assert 20 <= taken < 30
    assert buf.size()[0] <= 256 * 1024
    out = list(iter(lambda: buf.get(0), None))
    n = len(out)
    buf.commit(out)
    assert n == taken and buf.size() == (0, 0)
    assert len(list((tmp_path / "b").glob("*.lhb"))) == 1
