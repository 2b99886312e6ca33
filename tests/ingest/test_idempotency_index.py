"""The key index of retried batches (server/ingest/idempotency.py): entry keys, expiry, scope, the
file that keeps the keys of deleted WAL segments, and a rebuild after a restart from a real WAL."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logharbor.server.engine.wal import WriteAheadLog
from logharbor.server.ingest.idempotency import (
    DOCS_PER_ENTRY,
    EntryKey,
    KeyIndex,
    content_digest,
    doc_digest,
    request_digest,
    request_fingerprint,
    valid_key,
)
from logharbor.server.ingest.retries import Ticket, pack_entries

DAY = 86_400.0


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _request(scope: str, key: str, body: bytes = b"body") -> EntryKey:
    return EntryKey(1_800_000_000, (request_digest(scope, key), request_fingerprint("/api/v1/logs", body)))


digests12 = st.binary(min_size=12, max_size=12)
digests4 = st.binary(min_size=4, max_size=4)


@given(st.integers(min_value=0, max_value=2**32 - 1), st.booleans(),
       st.lists(st.tuples(digests12, digests4), max_size=DOCS_PER_ENTRY))
def test_entry_keys_round_trip_and_fit_in_a_wal_key(written: int, with_request: bool,
                                                    docs: list[tuple[bytes, bytes]]) -> None:
    key = EntryKey(written, (b"r" * 16, b"f" * 8) if with_request else None, docs)
    raw = key.encode()
    assert len(raw) <= 255
    assert EntryKey.decode(raw) == key


def test_foreign_entry_keys_are_ignored(tmp_path: Path) -> None:
    index = KeyIndex(tmp_path / "keys", window_s=DAY, max_keys=100)
    for raw in (b"", b"\x07abc", b"\x01\x00\x00\x00\x00\x81short"):
        with pytest.raises(ValueError):
            EntryKey.decode(raw)
        index.note(raw)  # never raises: a key some other writer put in the WAL
    assert len(index) == 0


def test_scope_and_fingerprint() -> None:
    assert request_digest("lh_aaaa", "batch-1") != request_digest("lh_bbbb", "batch-1")
    assert request_digest("a", "bc") != request_digest("ab", "c")  # length-prefixed parts
    assert request_fingerprint("/api/v1/logs", b"x") != request_fingerprint("/_bulk", b"x")
    assert doc_digest("tenant-a", "logs", "1") != doc_digest("tenant-b", "logs", "1")
    assert doc_digest("", "logs-a", "1") != doc_digest("", "logs-b", "1")
    assert valid_key("agent-0123-sink-1-2") and valid_key("x" * 255)
    assert not valid_key("") and not valid_key("x" * 256) and not valid_key("caf\u00e9") \
        and not valid_key("a\nb")


def test_expiry_after_the_window(tmp_path: Path) -> None:
    clock = Clock()
    index = KeyIndex(tmp_path / "keys", window_s=DAY, max_keys=100, clock=clock)
    key = _request("lh_a", "k1")
    key.written_s = int(clock.now)
    index.note(key.encode())
    assert index.request(key.request[0]) == key.request[1]  # type: ignore[index]
    clock.now += DAY - 1
    assert index.request(key.request[0]) is not None  # type: ignore[index]
    clock.now += 2
    assert index.request(key.request[0]) is None  # type: ignore[index]


def test_the_oldest_keys_go_first_beyond_max_keys(tmp_path: Path) -> None:
    clock = Clock()
    index = KeyIndex(tmp_path / "keys", window_s=DAY, max_keys=1000, clock=clock)
    keys = []
    for i in range(2600):
        key = EntryKey(int(clock.now), None, [(doc_digest("", "logs", str(i)), content_digest(b"%d" % i))])
        keys.append(key)
        index.note(key.encode())
    assert len(index) <= 2000
    assert index.doc(keys[-1].docs[0][0]) is not None
    assert index.doc(keys[0].docs[0][0]) is None


def test_persisted_keys_survive_a_restart_and_expire(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "idempotency.keys"
    index = KeyIndex(path, window_s=DAY, max_keys=100, clock=clock)
    old = _request("lh_a", "old")
    old.written_s = int(clock.now - DAY - 10)
    fresh = _request("lh_a", "fresh")
    fresh.written_s = int(clock.now - 10)
    index.persist([(1, old.encode()), (2, fresh.encode())])
    assert path.stat().st_mode & 0o777 == 0o600
    again = KeyIndex(path, window_s=DAY, max_keys=100, clock=clock)
    again.load([])
    assert again.request(fresh.request[0]) == fresh.request[1]  # type: ignore[index]
    assert again.request(old.request[0]) is None  # type: ignore[index]
    clock.now += DAY
    later = KeyIndex(path, window_s=DAY, max_keys=100, clock=clock)
    later.load([])
    assert len(later) == 0
    assert path.stat().st_size == 0  # expired keys are dropped from the file at start


def test_a_torn_file_keeps_the_records_before_the_tear(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "idempotency.keys"
    index = KeyIndex(path, window_s=DAY, max_keys=100, clock=clock)
    keys = [_request("s", f"k{i}") for i in range(3)]
    for key in keys:
        key.written_s = int(clock.now)
        index.persist([(0, key.encode())])
    data = path.read_bytes()
    path.write_bytes(data[:-5])  # the last append was cut short by a crash
    again = KeyIndex(path, window_s=DAY, max_keys=100, clock=clock)
    again.load([])
    assert [again.request(k.request[0]) is not None for k in keys] == [True, True, False]  # type: ignore[index]


def test_rebuilt_from_a_real_wal_and_its_deleted_segments(tmp_path: Path) -> None:
    """Keys written into WAL entries come back after a restart; the keys of released segments come
    back through before_remove and the file."""
    path = tmp_path / "idempotency.keys"
    index = KeyIndex(path, window_s=DAY, max_keys=10_000)
    wal = WriteAheadLog(tmp_path / "wal", segment_bytes=1 << 20, fsync=False)
    wal.open()
    wal.before_remove = index.persist
    first = [_request("lh_a", f"first-{i}") for i in range(5)]
    for key in first:
        key.written_s = int(index.clock())
        wal.submit(b'{"message":"x"}', key=key.encode()).result(timeout=10)
    wal.roll()
    end = wal.durable
    wal.release(end)  # the first segment's records are "stored": it is deleted, its keys persisted
    assert path.exists()
    second = [_request("lh_a", f"second-{i}") for i in range(5)]
    for key in second:
        key.written_s = int(index.clock())
        wal.submit(b'{"message":"y"}', key=key.encode()).result(timeout=10)
    wal.close()

    reopened = WriteAheadLog(tmp_path / "wal", segment_bytes=1 << 20, fsync=False)
    reopened.open()
    try:
        rebuilt = KeyIndex(path, window_s=DAY, max_keys=10_000)
        rebuilt.load(reopened.iter_keys())
        for key in first + second:
            assert rebuilt.request(key.request[0]) == key.request[1]  # type: ignore[index]
    finally:
        reopened.close()


def test_pack_entries_puts_the_request_key_last() -> None:
    ticket = Ticket(request=(b"r" * 16, b"f" * 8))
    keyed = [(b'{"i":%d}' % i, (doc_digest("", "logs", str(i)), b"cccc")) for i in range(40)]
    entries = pack_entries(ticket, keyed, [b'{"plain":1}'])
    assert len(entries) == 3
    decoded = [EntryKey.decode(key) for _, key in entries]
    assert [k.request is not None for k in decoded] == [False, False, True]
    assert sum(len(k.docs) for k in decoded) == 40
    assert b'{"plain":1}' in entries[-1][0] and b'{"plain":1}' not in entries[0][0]
    assert pack_entries(Ticket(), [], [b"row"]) == [(b"row", b"")]  # nothing to remember
    assert pack_entries(ticket, [], []) == []


def test_a_damaged_record_costs_only_its_own_key(tmp_path: Path) -> None:
    """A flipped bit in the middle of the file skips that record; the keys after it are read
    (they were all lost before: reading stopped at the first bad record)."""
    clock = Clock()
    path = tmp_path / "idempotency.keys"
    index = KeyIndex(path, window_s=DAY, max_keys=100, clock=clock)
    keys = [_request("s", f"k{i}") for i in range(6)]
    offsets = []
    for key in keys:
        key.written_s = int(clock.now)
        offsets.append(path.stat().st_size if path.exists() else 0)
        index.persist([(0, key.encode())])
    data = bytearray(path.read_bytes())
    data[offsets[2] + 8] ^= 0x10  # inside the third record's key
    path.write_bytes(bytes(data))
    again = KeyIndex(path, window_s=DAY, max_keys=100, clock=clock)
    again.load([])
    found = [again.request(k.request[0]) is not None for k in keys]  # type: ignore[index]
    assert found == [True, True, False, True, True, True]
