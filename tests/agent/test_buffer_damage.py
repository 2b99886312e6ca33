"""A damaged disk buffer costs the damaged entries and nothing else (the WAL's guarantees, agent side).

A table of byte edits in the last segment (new format and the format of older agents), damage
in older segments found at start and damage that appears while the agent runs, sealed buffers,
a noted batch replayed over damage, and a hypothesis property: random damage costs exactly the
entries it touched, each of which lies in a quarantined span (or was the torn tail).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from tests.agent.buffer_damage import (
    build,
    build_legacy,
    edit,
    entry_id,
    flip,
    item,
    quarantined,
    read_all,
    segments,
    spans,
)
from tests.conftest import examples

from logharbor.agent import statefile, telemetry
from logharbor.agent.buffer import DiskBuffer
from logharbor.agent.buffer.segments import ENTRY_MAX
from logharbor.agent.types import Encoded
from logharbor.sealing import Sealer

Edit = Callable[[Path, list[tuple[int, int, int]]], None]


def metric(name: str, sink: str) -> float:
    return telemetry.METRICS.registry.get_sample_value(name, {"sink": sink}) or 0.0


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def find(self, text: str) -> list[dict[str, Any]]:
        return [{"message": r.getMessage(), **getattr(r, "fields", {})} for r in self.records
                if text in r.getMessage()]


@pytest.fixture
def agent_log() -> Iterator[Lines]:
    lines = Lines()
    telemetry.log.addHandler(lines)
    level = telemetry.log.level
    telemetry.log.setLevel(logging.DEBUG)
    try:
        yield lines
    finally:
        telemetry.log.removeHandler(lines)
        telemetry.log.setLevel(level)


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


# LHBUF02 entry: sync 0-3, header CRC 4-7, seq 8-15, length 16-19, payload CRC 20-23, key length
# 24, key (the record count) 25-28, payload 29-. Name, edit, damaged entries, quarantined spans, torn.
V2_CASES: list[tuple[str, Edit, set[int], int, bool]] = [
    ("clean", lambda seg, sp: None, set(), 0, False),
    ("payload_bit", _at(4, -20), {4}, 1, False),
    ("sync_marker", _at(4, 0), {4}, 1, False),
    ("header_crc", _at(4, 5), {4}, 1, False),
    ("seq", _at(4, 9, 3), {4}, 1, False),
    ("length_high_byte", _at(4, 19, 6), {4}, 1, False),
    ("payload_crc_field", _at(4, 21), {4}, 1, False),
    ("key_length", _at(4, 24), {4}, 1, False),
    ("record_count", _at(4, 26), {4}, 1, False),
    ("first_entry", _at(0, 10), {0}, 1, False),
    ("two_entries_zeroed", _zero(4, 5), {4, 5}, 2, False),
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

# older agents' entry: length 0-3, record count 4-7, CRC of the payload 8-11, payload 12-
V1_CASES: list[tuple[str, Edit, set[int], int, bool]] = [
    ("clean", lambda seg, sp: None, set(), 0, False),
    ("payload_bit", _at(4, -20), {4}, 1, False),
    ("length_field", _at(4, 1), {4}, 1, False),
    ("crc_field", _at(4, 9), {4}, 1, False),
    ("first_entry_length", _at(0, 2, 4), {0}, 1, False),
    ("two_apart", _both(_at(2, -5), _at(6, 0, 7)), {2, 6}, 2, False),
    ("two_entries_zeroed", _zero(4, 5), {4, 5}, 1, False),  # no header CRC: one span
    ("last_payload", _at(9, -3), {9}, 1, False),
    ("torn_in_header", _truncate(5), {9}, 0, True),
    ("cut_in_payload", _truncate(40), {9}, 1, False),  # a torn write or a damaged length: kept aside
    ("zero_filled_tail", _append(b"\0" * 4096), set(), 0, True),
    # the old format's CRC does not cover the record count: the records still arrive, whole
    ("record_count_not_checked", _at(4, 5), set(), 0, False),
]


def _check_case(directory: Path, edit_fn: Edit, damaged: set[int], kept: int, torn: bool,
                legacy: bool) -> None:
    sink = directory.name
    if legacy:
        build_legacy(directory, 10)
    else:
        build(directory, 10)
    (seg,) = segments(directory)
    edit_fn(seg, spans(seg))
    before = metric("logharbor_agent_buffer_corrupt_entries_total", sink)
    torn_before = metric("logharbor_agent_buffer_torn_tail_bytes_total", sink)
    DiskBuffer(directory, 1 << 20, "block").close()  # a start that delivers nothing
    again = DiskBuffer(directory, 1 << 20, "block")  # and a second: the same damage, counted once
    survivors = [i for i in range(10) if i not in damaged]
    assert again.size()[1] == 2 * len(survivors) or legacy
    assert read_all(again) == survivors
    assert again.size() == (0, 0)  # nothing phantom left behind (an agent at EOF waits for this)
    assert metric("logharbor_agent_buffer_corrupt_entries_total", sink) - before == kept
    assert len(quarantined(directory)) == kept
    assert metric("logharbor_agent_buffer_quarantine_files", sink) == kept
    assert (metric("logharbor_agent_buffer_torn_tail_bytes_total", sink) > torn_before) is torn
    for info in quarantined(directory):
        assert info["size"] == info["file_bytes"] > 0 and info["reason"] and info["segment"] == seg.name
    # it goes on: a new entry is written (in a new-format segment when the last one was damaged
    # or old), read back, and nothing is left after a restart
    assert again.put(item(99))
    assert read_all(again) == [99]
    again.close()
    last = DiskBuffer(directory, 1 << 20, "block")
    assert read_all(last) == [] and last.size() == (0, 0)
    assert metric("logharbor_agent_buffer_corrupt_entries_total", sink) - before == kept
    last.close()
    assert all(p.suffix == ".lhb" for p in segments(directory))  # the old format left once delivered


@pytest.mark.parametrize(("name", "edit_fn", "damaged", "kept", "torn"), V2_CASES, ids=[c[0] for c in V2_CASES])
def test_damage_in_the_last_segment_costs_only_the_damaged_entries(
        tmp_path: Path, name: str, edit_fn: Edit, damaged: set[int], kept: int, torn: bool) -> None:
    _check_case(tmp_path / f"v2-{name}", edit_fn, damaged, kept, torn, legacy=False)


@pytest.mark.parametrize(("name", "edit_fn", "damaged", "kept", "torn"), V1_CASES, ids=[c[0] for c in V1_CASES])
def test_old_format_buffers_are_read_and_their_damage_passed(
        tmp_path: Path, name: str, edit_fn: Edit, damaged: set[int], kept: int, torn: bool) -> None:
    _check_case(tmp_path / f"v1-{name}", edit_fn, damaged, kept, torn, legacy=True)


def test_an_upgrade_resumes_at_the_old_agents_delivered_position(tmp_path: Path) -> None:
    """An older agent's ``ack.json`` (no CRC) and segment: what it delivered is not sent again,
    new entries follow the old ones in a new-format segment, and the old segment goes once read."""
    directory = tmp_path / "b"
    seg = build_legacy(directory, 10)
    third = spans(seg)[3][2]  # delivered up to the end of entry 3
    (directory / "ack.json").write_bytes(orjson.dumps({"segment": 0, "offset": third, "batches": []}))
    buf = DiskBuffer(directory, 1 << 20, "block")
    assert buf.size()[1] == 12
    assert buf.put(item(10))
    assert read_all(buf) == list(range(4, 11))
    assert [p.suffix for p in segments(directory)] == [".lhb"]
    buf.close()


def test_damage_in_older_segments_is_found_at_start(tmp_path: Path, agent_log: Lines) -> None:
    directory = tmp_path / "older"
    build(directory, 30, segment_bytes=600)
    segs = segments(directory)
    assert len(segs) >= 4
    lost = []
    for seg in segs[:2]:  # the middle entry of the two oldest segments
        sp = spans(seg)
        mid = sp[len(sp) // 2]
        flip(seg, (mid[1] + mid[2]) // 2)
        lost.append(mid[0])
    buf = DiskBuffer(directory, 1 << 20, "block", segment_bytes=600)
    assert read_all(buf) == [i for i in range(30) if i not in lost]
    assert buf.size() == (0, 0)
    assert len(quarantined(directory)) == 2
    found = agent_log.find("disk buffer damage skipped")
    assert len(found) == 2 and {f["segment"] for f in found} == {s.name for s in segs[:2]}
    assert all(f["bytes"] > 0 and f["offset"] > 0 and f["copy"].endswith(".bad") for f in found)
    buf.close()


def test_damage_that_appears_while_running_is_found_when_read(tmp_path: Path) -> None:
    """Bytes damaged after the start (in an older segment and below the durable end of the live
    one) are found when read: set aside, passed, counted; delivery goes on and nothing stalls."""
    directory = tmp_path / "running"
    buf = DiskBuffer(directory, 1 << 20, "block", segment_bytes=600)
    for i in range(20):
        assert buf.put(item(i))
    segs = segments(directory)
    first, live = spans(segs[0]), spans(segs[-1])
    flip(segs[0], (first[1][1] + first[1][2]) // 2)
    flip(segs[-1], live[0][1] + 2)  # the sync marker of the live segment's first entry
    lost = {first[1][0], live[0][0]}
    assert read_all(buf) == [i for i in range(20) if i not in lost]
    assert buf.size() == (0, 0)
    assert len(quarantined(directory)) == 2
    assert buf.put(item(20))
    assert read_all(buf) == [20]
    buf.close()


def test_a_large_item_is_written_as_entries_of_whole_records_so_damage_costs_a_part(tmp_path: Path) -> None:
    directory = tmp_path / "large"
    buf = DiskBuffer(directory, 1 << 30, "block")
    lines = [orjson.dumps({"id": "e00001", "n": k, "message": "y" * 200}) + b"\n" for k in range(1500)]
    big = Encoded(b"".join(lines), len(lines), None)  # ~330 KiB: one chunk of a busy file
    assert buf.put(big) and buf.put(item(2))
    buf.close()
    (seg,) = segments(directory)
    sp = spans(seg)
    assert len(sp) >= 6 and all(b - a <= ENTRY_MAX + 64 for _, a, b in sp)
    flip(seg, (sp[2][1] + sp[2][2]) // 2)
    again = DiskBuffer(directory, 1 << 30, "block")
    got = list(iter(lambda: again.get(0), None))
    records = [line for x in got for line in x.payload.splitlines(keepends=True)]
    assert sum(x.count for x in got) == len(records) > 1500 - 400  # one piece lost, not the chunk
    kept = [r for r in lines if r in set(records)]
    assert kept == [r for r in records if r in set(lines)]  # in order, none twice
    assert records[-2:] == item(2).payload.splitlines(keepends=True)
    again.close()


def test_a_sealed_buffer_costs_only_the_damaged_entry(tmp_path: Path) -> None:
    sealer = Sealer({1: bytes(range(32))})
    directory = tmp_path / "sealed"
    build(directory, 10, sealer=sealer)
    (seg,) = segments(directory)
    sp = spans(seg, sealer)
    flip(seg, (sp[5][1] + sp[5][2]) // 2)
    buf = DiskBuffer(directory, 1 << 20, "block", sealer)
    assert read_all(buf) == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    (info,) = quarantined(directory)
    assert b'"id"' not in (directory / "quarantine" / f"{seg.name}-{info['offset']:012d}.bad").read_bytes()
    buf.close()


def test_a_sealed_entry_whose_key_is_gone_is_not_damage(tmp_path: Path, agent_log: Lines) -> None:
    directory = tmp_path / "keys"
    build(directory, 3, sealer=Sealer({1: bytes(range(32))}))
    wrong = DiskBuffer(directory, 1 << 20, "block", Sealer({2: bytes(32)}))
    assert wrong.get(0) is None  # it waits for the key; it does not skip or set anything aside
    assert agent_log.find("cannot be opened") and not quarantined(directory)
    wrong.close()
    right = DiskBuffer(directory, 1 << 20, "block", Sealer({1: bytes(range(32)), 2: bytes(32)}))
    assert read_all(right) == [0, 1, 2]
    right.close()


def test_a_noted_batch_replayed_over_damage_never_takes_an_entry_past_its_end(tmp_path: Path) -> None:
    """A batch noted before a crash is formed again from the same start to the same end (the same
    span, so the same idempotency key), without the entries damage took and without the next one."""
    directory = tmp_path / "replay"
    build(directory, 8)
    buf = DiskBuffer(directory, 1 << 20, "block")
    batch = [buf.get(0) for _ in range(4)]
    assert all(x is not None for x in batch)
    items = [x for x in batch if x is not None]
    span = buf.span(items)
    buf.note_batch(items)  # then the crash, before it was delivered
    (seg,) = segments(directory)
    sp = spans(seg)
    flip(seg, (sp[2][1] + sp[2][2]) // 2)
    again = DiskBuffer(directory, 1 << 20, "block")
    first = again.get(0)
    assert first is not None and entry_id(first.payload) == 0
    assert again.replay_end(first) == 3
    rest = [again.get(0), again.get(0)]
    replayed = [first, *(x for x in rest if x is not None)]
    assert [entry_id(x.payload) for x in replayed] == [0, 1, 3]
    assert again.span(replayed) == span  # the same key: a server that stored it stores it once
    again.close()


def test_a_damaged_delivered_position_falls_back_to_its_previous_copy(tmp_path: Path, agent_log: Lines) -> None:
    directory = tmp_path / "ack"
    build(directory, 10)
    buf = DiskBuffer(directory, 1 << 20, "block")
    for _ in range(2):  # two deliveries: the previous copy says 3, the current one 6
        batch = [x for x in (buf.get(0) for _ in range(3)) if x is not None]
        buf.commit(batch)
    buf.close()
    doc = orjson.loads((directory / "ack.json").read_bytes())
    text = (directory / "ack.json").read_bytes().replace(b'"offset": %d' % doc["offset"],
                                                         b'"offset": %d' % (doc["offset"] + 1))
    (directory / "ack.json").write_bytes(text)  # a digit changed: it still parses, but lies
    before = telemetry.METRICS.registry.get_sample_value(
        "logharbor_agent_state_files_damaged_total", {"kind": "buffer_position"}) or 0
    again = DiskBuffer(directory, 1 << 20, "block")
    assert read_all(again) == [3, 4, 5, 6, 7, 8, 9]  # one delivery again, never the whole buffer
    (line,) = agent_log.find("state file damaged")
    assert line["kind"] == "buffer_position" and "CRC" in line["damaged"][0] and "previous" in line["using"]
    assert telemetry.METRICS.registry.get_sample_value(
        "logharbor_agent_state_files_damaged_total", {"kind": "buffer_position"}) == before + 1
    again.close()


def test_no_sound_position_resends_what_is_on_disk_and_says_so(tmp_path: Path, agent_log: Lines) -> None:
    directory = tmp_path / "noack"
    build(directory, 6)
    buf = DiskBuffer(directory, 1 << 20, "block")
    buf.commit([x for x in (buf.get(0) for _ in range(2)) if x is not None])
    buf.close()
    for name in ("ack.json", "ack.json.prev"):
        (directory / name).write_bytes(b"\0" * 40)
    again = DiskBuffer(directory, 1 << 20, "block")
    assert read_all(again) == list(range(6))
    assert agent_log.find("disk buffer position lost")[0]["records"] == 12
    again.close()


def test_a_damaged_buffer_id_is_restored_from_its_copy(tmp_path: Path) -> None:
    directory = tmp_path / "ident"
    build(directory, 2)
    buf = DiskBuffer(directory, 1 << 20, "block")
    buf.commit([x for x in [buf.get(0)] if x is not None])
    ident = buf.id
    buf.close()
    (directory / "id").write_bytes(b"\xff\xfe")
    assert DiskBuffer(directory, 1 << 20, "block").id == ident


def test_state_documents_are_checked_and_keep_their_previous_copy(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    statefile.write(path, {"n": 1})
    statefile.write(path, {"n": 2})
    assert statefile.read(path).doc == {"n": 2}
    assert statefile.parse((tmp_path / "state.json.prev").read_bytes()) == {"n": 1}
    path.write_bytes(path.read_bytes().replace(b"2", b"3"))
    got = statefile.read(path)
    assert got.doc == {"n": 1} and got.source == "previous" and got.fell_back
    path.with_name("state.json.prev").write_bytes(b"{")
    got = statefile.read(path)
    assert got.doc is None and len(got.damaged) == 2
    path.write_bytes(orjson.dumps({"n": 4}))  # an older agent's document, without a CRC: taken as is
    assert statefile.read(path).doc == {"n": 4}


# -- the property ---------------------------------------------------------------------------------

@st.composite
def damages(draw: Any) -> list[tuple[float, float, bytes]]:
    out = []
    for _ in range(draw(st.integers(1, 3))):
        mask = (bytes([1 << draw(st.integers(0, 7))]) if draw(st.booleans())
                else draw(st.binary(min_size=1, max_size=48).filter(all)))
        out.append((draw(st.floats(0, 1, exclude_max=True)), draw(st.floats(0, 1, exclude_max=True)), mask))
    return out


@settings(max_examples=int(os.environ.get("BUFFER_PROPERTY_EXAMPLES") or examples(60)), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(4, 40), segment_bytes=st.integers(300, 3000), old_first=st.booleans(),
       edits=damages(), size=st.integers(20, 400))
def test_random_damage_costs_exactly_the_touched_entries(
        tmp_path_factory: pytest.TempPathFactory, n: int, segment_bytes: int, old_first: bool,
        edits: list[tuple[float, float, bytes]], size: int) -> None:
    directory = tmp_path_factory.mktemp("buf")
    first = 0
    if old_first:  # an upgrade: a segment of an older agent first, then the new format
        first = min(5, n - 1)
        build_legacy(directory, first, size=size)
    build(directory, n, segment_bytes=segment_bytes, size=size, first=first)
    segs = segments(directory)
    where = {i: (seg, a, b) for seg in segs for i, a, b in spans(seg)}
    assert sorted(where) == list(range(n))
    before = {seg: seg.read_bytes() for seg in segs}
    for seg_at, off_at, mask in edits:
        seg = segs[int(seg_at * len(segs))]
        data = bytearray(seg.read_bytes())
        start = int(off_at * len(data))
        for k, m in enumerate(mask[: len(data) - start]):
            data[start + k] ^= m
        seg.write_bytes(bytes(data))

    def touched(i: int) -> bool:
        seg, a, b = where[i]
        old, new = before[seg][a:b], seg.read_bytes()[a:b]
        if seg.suffix == ".seg":  # the old format's CRC does not cover the record count (bytes 4-7)
            old, new = old[:4] + old[8:], new[:4] + new[8:]
        return old != new

    hit = {i for i in where if touched(i)}
    buf = DiskBuffer(directory, 1 << 30, "block", segment_bytes=segment_bytes)
    got = read_all(buf)
    held = buf.size()
    buf.close()
    case = f"n={n} segment_bytes={segment_bytes} old_first={old_first} size={size} edits={edits!r}"
    assert sorted(got) == got and len(set(got)) == len(got), case  # in order, none twice
    assert set(got) == set(range(n)) - hit, case  # every untouched entry; no touched one
    assert held == (0, 0), case
    kept = quarantined(directory)
    for i in hit:  # each touched entry lies in a quarantined span, or was the torn tail of the last
        seg, a, b = where[i]
        inside = any(q["segment"] == seg.name and q["offset"] < b and a < q["offset"] + q["size"] for q in kept)
        assert inside or (seg == segs[-1] and i == n - 1), (i, kept, case)
