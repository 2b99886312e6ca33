"""The write-ahead log on real files: group commit, rotation, torn tails, limits, keys, reclaim."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings
from tests.conftest import examples
from tests.server.wal_damage import (
    build,
    build_v1,
    edit,
    entry_id,
    flip,
    payload,
    quarantined,
    read_everything,
    segments,
    spans,
)

from logharbor.framing import MAGIC_V2
from logharbor.server.engine.wal import WalFull, WalLocked, WalPosition, WriteAheadLog
from logharbor.server.engine.wal.segments import lock_directory


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


def test_an_entry_larger_than_the_limit_is_taken_once_the_backlog_is_low(tmp_path: Path) -> None:
    """An entry bigger than the whole limit could never pass 'backlog + entry ≤ limit': a syslog
    read of 4 MB under --wal-max-mb 1 was refused for good (the sender held back, its lines cut
    off at the next stop). Such an entry waits while the backlog is at half the limit or more and
    is taken below it; entries that fit are refused only by the limit, as before."""
    limit = 1024 * 1024
    wal = open_wal(tmp_path, segment_bytes=1024 * 1024, max_bytes=limit)
    big = b"b" * (3 * limit)
    wal.submit(b"z" * (limit // 2)).result(timeout=10)  # half the limit waits to be stored
    with pytest.raises(WalFull):
        wal.submit(big)
    entries = wal.read(wal.start_position(), 1 << 40)
    wal.release(entries[-1].end)  # stored: the backlog is empty again
    seq = wal.submit(big).result(timeout=10)
    assert [p for s, p in ((e.seq, e.payload) for e in wal.read(entries[-1].end, 1 << 40)) if s == seq] == [big]
    with pytest.raises(WalFull):  # over the limit now: nothing more until the batcher catches up
        wal.submit(b"small")
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
    wal = open_wal(tmp_path, reclaim_bytes=1024 * 1024, reclaim_interval_s=0)
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


# -- damage: a table of byte edits and the entries that must survive -------------------------------
# (Prometheus's TestWALRepair_ReadingError is the model; every case here is our own.) Entries are
# numbered 0..9 and carry sequence numbers 1..10; each edit names the entries it damages.

Edit = Callable[[Path, list[tuple[int, int, int]]], None]


def _at(k: int, delta: int, bit: int = 0) -> Edit:
    """Flip one bit ``delta`` bytes into entry ``k`` (negative: from its end)."""
    return lambda seg, sp: flip(seg, (sp[k][1] if delta >= 0 else sp[k][2]) + delta, bit)


def _zero(a: int, b: int) -> Edit:
    """Zero from the middle of entry ``a`` to the middle of entry ``b``."""
    def go(seg: Path, sp: list[tuple[int, int, int]]) -> None:
        lo, hi = (sp[a][1] + sp[a][2]) // 2, (sp[b][1] + sp[b][2]) // 2
        edit(seg, lo, b"\0" * (hi - lo))
    return go


def _truncate(keep_of_last: int) -> Edit:
    return lambda seg, sp: os.truncate(seg, sp[-1][1] + keep_of_last)


def _append(data: bytes) -> Edit:
    def go(seg: Path, sp: list[tuple[int, int, int]]) -> None:
        with open(seg, "ab") as fh:
            fh.write(data)
    return go


def _both(*edits: Edit) -> Edit:
    def go(seg: Path, sp: list[tuple[int, int, int]]) -> None:
        for one in edits:
            one(seg, sp)
    return go


# name, edit, damaged entries, quarantined spans, torn tail
V2_CASES: list[tuple[str, Edit, set[int], int, bool]] = [
    ("clean", lambda seg, sp: None, set(), 0, False),
    ("payload_bit", _at(4, -20), {4}, 1, False),
    ("sync_marker", _at(4, 0), {4}, 1, False),
    ("header_crc", _at(4, 5), {4}, 1, False),
    ("seq", _at(4, 9, 3), {4}, 1, False),
    ("length_high_byte", _at(4, 19, 6), {4}, 1, False),
    ("payload_crc_field", _at(4, 21), {4}, 1, False),
    ("key_length", _at(4, 24), {4}, 1, False),
    ("key_byte", _at(4, 26), {4}, 1, False),
    ("first_entry", _at(0, 10), {0}, 1, False),
    ("two_entries_zeroed", _zero(4, 5), {4, 5}, 2, False),  # 4's header holds: two spans
    ("two_apart", _both(_at(2, -5), _at(6, 2)), {2, 6}, 2, False),
    ("last_payload", _at(9, -3), {9}, 1, False),
    ("last_header", _at(9, 9), {9}, 1, False),
    ("segment_magic", lambda seg, sp: flip(seg, 2), set(), 1, False),
    ("torn_1_byte", lambda seg, sp: os.truncate(seg, sp[-1][2] - 1), {9}, 0, True),
    ("torn_in_header", _truncate(10), {9}, 0, True),
    ("torn_after_header", _truncate(40), {9}, 0, True),
    ("zero_filled_tail", _append(b"\0" * 4096), set(), 0, True),
    ("garbage_tail", _append(bytes(range(1, 101))), set(), 1, False),
    ("damage_then_torn", _both(_at(3, -4), lambda seg, sp: os.truncate(seg, sp[-1][2] - 5)), {3, 9}, 1, True),
]


def _survivors(tmp_path: Path, edit_fn: Edit, *, keys: bool = True, size: int = 60
               ) -> tuple[WriteAheadLog, list[int]]:
    build(tmp_path, 10, keys=keys, size=size)
    (seg,) = segments(tmp_path)
    edit_fn(seg, spans(seg))
    wal = open_wal(tmp_path)
    return wal, [entry_id(e) for e in read_everything(wal)]


@pytest.mark.parametrize(("name", "edit_fn", "damaged", "kept", "torn"), V2_CASES, ids=[c[0] for c in V2_CASES])
def test_damage_in_the_last_segment_costs_only_the_damaged_entries(
        tmp_path: Path, name: str, edit_fn: Edit, damaged: set[int], kept: int, torn: bool) -> None:
    wal, got = _survivors(tmp_path, edit_fn)
    assert got == [i for i in range(10) if i not in damaged]
    assert wal.quarantine.corrupt_entries == kept == len(quarantined(tmp_path))
    assert (wal.quarantine.torn_tails == 1) is torn
    for info in quarantined(tmp_path):  # each sidecar says where the bytes were and which numbers
        assert info["complete"] and info["size"] == info["file_bytes"] > 0
        assert info["segment"] == "00000000000000000001.wal" and info["reason"]
    lost_seqs = {i + 1 for i in damaged}
    named = {s for info in quarantined(tmp_path) if info["seq_first"] is not None
             for s in range(info["seq_first"], (info["seq_last"] or info["seq_first"]) + 1)}
    assert lost_seqs - named <= ({10} if torn else set())  # every lost number is named (a torn one: logged)
    # the WAL goes on: new entries get numbers no lost entry had, are read back, and survive a restart
    new = wal.submit(b'{"id":"e00099"}').result(timeout=10)
    assert new > max(i + 1 for i in got) and all(new > (q["seq_last"] or 0) for q in quarantined(tmp_path))
    wal.close()
    again = open_wal(tmp_path)
    assert [entry_id(e) for e in read_everything(again)] == [*got, 99]
    assert again.quarantine.corrupt_entries == 0 or name == "segment_magic"  # nothing new was found
    again.close()


def test_zero_filled_sectors_at_the_end_of_the_last_entry_are_a_torn_tail(tmp_path: Path) -> None:
    def zero_end(seg: Path, sp: list[tuple[int, int, int]]) -> None:
        edit(seg, sp[-1][2] - 1024, b"\0" * 1024)  # the file's length was written, its last sectors not

    wal, got = _survivors(tmp_path, zero_end, size=3000)
    assert got == list(range(9))
    assert wal.quarantine.torn_tails == 1 and wal.quarantine.corrupt_entries == 0
    wal.close()


def test_damage_in_sealed_segments_is_found_when_read(tmp_path: Path) -> None:
    build(tmp_path, 30, segment_bytes=500)
    segs = segments(tmp_path)
    assert len(segs) >= 5
    plan = {0: "middle payload", 1: "last header", 2: "whole body"}
    lost: set[int] = set()
    for index, what in plan.items():
        sp = spans(segs[index])
        if what == "middle payload":
            i, a, b = sp[len(sp) // 2]
            flip(segs[index], b - 7)
            lost.add(i)
        elif what == "last header":
            i, a, b = sp[-1]
            flip(segs[index], a + 12)
            lost.add(i)
        else:
            edit(segs[index], 8, bytes(range(1, 256)) * 4 + b"\x11" * (segs[index].stat().st_size - 8 - 1020))
            lost.update(i for i, _, _ in sp)
    wal = open_wal(tmp_path)
    assert wal.quarantine.corrupt_entries == 0  # sealed segments are checked when read, not at start
    got = [entry_id(e) for e in read_everything(wal)]
    assert got == [i for i in range(30) if i not in lost]
    assert wal.quarantine.corrupt_entries == 3
    again = [entry_id(e) for e in read_everything(wal)]  # a replay sees exactly the same entries
    assert again == got and wal.quarantine.corrupt_entries == 3  # and each damage counts once
    wal.close()


def test_damage_below_the_durable_end_of_the_live_segment(tmp_path: Path) -> None:
    """Bits that rot while the server runs: found at read time, passed, and the segment sealed."""
    wal = open_wal(tmp_path)
    for i in range(6):
        wal.submit(payload(i)).result(timeout=10)
    (seg,) = segments(tmp_path)
    sp = spans(seg)
    flip(seg, sp[2][2] - 3)
    flip(seg, sp[5][1] + 9)  # the last durable entry: no valid entry follows it yet
    first = wal.read(wal.start_position(), 1 << 20)
    assert [entry_id(e) for e in first] == [0, 1, 3, 4]
    assert first.end == wal.durable  # past the damage: a reader never stalls on it
    assert wal.quarantine.corrupt_entries == 2
    wal.submit(payload(6)).result(timeout=10)
    assert len(segments(tmp_path)) == 2  # the damaged segment was sealed; new entries go elsewhere
    assert [entry_id(e) for e in wal.read(first.end, 1 << 20)] == [6]
    wal.close()


def test_a_read_that_finds_only_damage_still_moves_on(tmp_path: Path) -> None:
    wal = open_wal(tmp_path)
    wal.submit(payload(0)).result(timeout=10)
    (seg,) = segments(tmp_path)
    flip(seg, spans(seg)[0][2] - 2)
    got = wal.read(wal.start_position(), 1 << 20)
    assert list(got) == [] and got.end == wal.durable
    wal.close()


# LHWAL01 (written by older servers) is still read; its damage is handled as well as one CRC over
# header and payload allows: resynchronisation looks for the next sequence numbers.
V1_CASES: list[tuple[str, Edit, set[int], int, bool]] = [
    ("clean", lambda seg, sp: None, set(), 0, False),
    ("payload_bit", _at(4, -20), {4}, 1, False),
    ("length", _at(4, 2, 4), {4}, 1, False),
    ("crc", _at(4, 5), {4}, 1, False),
    ("seq", _at(4, 8), {4}, 1, False),
    ("two_entries_zeroed", _zero(4, 5), {4, 5}, 1, False),
    ("last_payload", _at(9, -3), {9}, 1, False),
    ("torn_in_header", _truncate(10), {9}, 0, True),
    # a whole header with its payload cut short: a torn write or a damaged length, LHWAL01 cannot
    # tell, so the bytes are kept in quarantine rather than dropped
    ("cut_payload", lambda seg, sp: os.truncate(seg, sp[-1][2] - 5), {9}, 1, False),
]


@pytest.mark.parametrize(("name", "edit_fn", "damaged", "kept", "torn"), V1_CASES, ids=[c[0] for c in V1_CASES])
def test_old_format_segments_are_read_and_their_damage_passed(
        tmp_path: Path, name: str, edit_fn: Edit, damaged: set[int], kept: int, torn: bool) -> None:
    seg = build_v1(tmp_path, 10)
    edit_fn(seg, spans(seg))
    wal = open_wal(tmp_path)
    assert [entry_id(e) for e in read_everything(wal)] == [i for i in range(10) if i not in damaged]
    assert wal.quarantine.corrupt_entries == kept and (wal.quarantine.torn_tails == 1) is torn
    new = wal.submit(payload(99)).result(timeout=10)  # into a new LHWAL02 segment
    assert new > max(i + 1 for i in range(10) if i not in damaged)
    assert all(new > (q["seq_last"] or 0) for q in quarantined(tmp_path))
    assert [s.read_bytes()[:8] for s in segments(tmp_path)][-1] == MAGIC_V2
    assert entry_id(read_everything(wal)[-1]) == 99
    wal.close()


def test_old_format_sealed_segment_damage_is_found_when_read(tmp_path: Path) -> None:
    old = build_v1(tmp_path, 20)
    flip(old, spans(old)[7][1] + 1)  # the length field of entry 7
    wal = open_wal(tmp_path)
    assert wal.quarantine.corrupt_entries == 1  # the last segment at start: scanned whole
    for i in range(20, 25):
        wal.submit(payload(i)).result(timeout=10)
    wal.close()
    wal = open_wal(tmp_path)  # now sealed: its damage is met again when read, already set aside
    assert [entry_id(e) for e in read_everything(wal)] == [i for i in range(25) if i != 7]
    assert wal.quarantine.corrupt_entries == 0 and len(quarantined(tmp_path)) == 1
    wal.close()


# -- the property: random damage anywhere costs exactly the entries it touched ---------------------

@st.composite
def damages(draw: st.DrawFn) -> list[tuple[float, float, str, bytes]]:
    """Up to three edits: (which segment, where in it, kind, xor mask)."""
    out = []
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["bit", "run"]))
        mask = (bytes([1 << draw(st.integers(0, 7))]) if kind == "bit"
                else draw(st.binary(min_size=1, max_size=48).filter(lambda b: all(b))))
        out.append((draw(st.floats(0, 1, exclude_max=True)), draw(st.floats(0, 1, exclude_max=True)), kind, mask))
    return out


@settings(max_examples=int(os.environ.get("WAL_PROPERTY_EXAMPLES") or examples(60)), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(4, 40), segment_bytes=st.integers(300, 3000), old_first=st.booleans(),
       edits=damages(), sizes=st.integers(20, 400))
def test_random_damage_costs_exactly_the_touched_entries(
        tmp_path_factory: pytest.TempPathFactory, n: int, segment_bytes: int, old_first: bool,
        edits: list[tuple[float, float, str, bytes]], sizes: int) -> None:
    directory = tmp_path_factory.mktemp("wal")
    first = 0
    if old_first:  # an upgrade: an LHWAL01 segment first, then the new format
        first = min(5, n - 1)
        build_v1(directory, first, size=sizes)
    wal = WriteAheadLog(directory, segment_bytes=segment_bytes, fsync=False, reclaim_bytes=None)
    wal.open()
    for i in range(first, n):
        wal.submit(payload(i, sizes + i % 7)).result(timeout=10)
    wal.close()
    segs = segments(directory)
    where = {i: (seg, a, b) for seg in segs for i, a, b in spans(seg)}
    before = {seg: seg.read_bytes() for seg in segs}
    for seg_at, off_at, _, mask in edits:
        seg = segs[int(seg_at * len(segs))]
        data = bytearray(seg.read_bytes())
        start = int(off_at * len(data))
        for k, m in enumerate(mask[: len(data) - start]):
            data[start + k] ^= m
        seg.write_bytes(bytes(data))
    touched = {i for i, (seg, a, b) in where.items() if seg.read_bytes()[a:b] != before[seg][a:b]}
    wal = WriteAheadLog(directory, fsync=False)
    wal.open()
    got = [entry_id(e) for e in read_everything(wal)]
    wal.close()
    assert sorted(got) == got and len(set(got)) == len(got)  # in order, none twice
    case = f"n={n} segment_bytes={segment_bytes} old_first={old_first} sizes={sizes} edits={edits!r}"
    assert set(got) == set(range(n)) - touched, case  # every untouched entry; no touched one
    kept = quarantined(directory)
    for i in touched:  # each touched entry lies in a quarantined span (or was the torn tail of the last)
        seg, a, b = where[i]
        inside = any(q["segment"] == seg.name and q["offset"] < b and a < q["offset"] + q["size"] for q in kept)
        assert inside or (wal.quarantine.torn_tails and seg == segs[-1] and i == n - 1), (i, kept, case)


def test_a_replayed_batch_reads_the_same_entries_past_damage(tmp_path: Path) -> None:
    """The batcher's intent replay (_read_range) over a range that holds damage, including damage
    right at its end: it returns exactly the valid entries, and never stops short or loops."""
    from logharbor.server.engine.batcher import Batcher

    build(tmp_path, 20, segment_bytes=500)
    segs = segments(tmp_path)
    assert len(segs) >= 3
    in_range = len(spans(segs[0])) + len(spans(segs[1]))
    flip(segs[0], spans(segs[0])[1][2] - 2)  # inside the range
    flip(segs[1], spans(segs[1])[-1][1] + 9)  # the last entry of the range's second segment
    wal = open_wal(tmp_path)
    first = wal.read(wal.start_position(), 1 << 20)
    end = WalPosition(int(segs[2].name[:-4]), 8)  # the range ends where the third segment starts
    batcher = Batcher(wal, None, tmp_path / "batcher.json")  # type: ignore[arg-type]  # no insert here
    replayed = batcher._read_range(wal.start_position(), end)
    expected = [e for e in first if e.start < end]
    assert [entry_id(e) for e in replayed] == [entry_id(e) for e in expected]
    assert len(expected) == in_range - 2
    wal.close()


def test_a_sealed_entry_whose_key_is_gone_is_not_damage(tmp_path: Path) -> None:
    """Checks that hold over bytes that cannot be opened mean a missing key, not a damaged disk:
    the reader stops with the sealer's error (and nothing is set aside) until the key is back."""
    from logharbor.sealing import Sealer, SealError

    old_key, new_key = Sealer({1: os.urandom(32)}), Sealer({2: os.urandom(32)})
    wal = open_wal(tmp_path / "wal", sealer=old_key)
    wal.submit(b'{"id":"e00001"}').result(timeout=10)
    wal.close()
    wal = open_wal(tmp_path / "wal", sealer=new_key)
    with pytest.raises(SealError, match="key 1"):
        wal.read(wal.start_position(), 1 << 20)
    assert wal.quarantine.corrupt_entries == 0 and not quarantined(tmp_path / "wal")
    wal.close()
    wal = open_wal(tmp_path / "wal", sealer=Sealer({1: old_key.keys[1], 2: new_key.keys[2]}))
    assert [entry_id(e) for e in read_everything(wal)] == [1]
    wal.close()
