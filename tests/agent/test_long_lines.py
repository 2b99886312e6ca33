"""Long and partial lines in the file source: never split, merged or cut without a mark.

A line longer than a read block used to ship as several records (a 100 KiB JSON line with a stack
trace became pieces the JSON parser mis-read); the last line of a rotated file that never got its
newline was never shipped (the reader waited for it forever); NUL bytes a crash left before a line
were glued to it. Each test names the case and fails on the code before the fix.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import orjson
from tests.agent.harness import Harness

from logharbor.agent import telemetry


def json_line(seq: int, size: int) -> str:
    """A JSON line of about ``size`` bytes: a stack trace escaped in one string, as loggers write."""
    frames = "\\n".join(f"  at com.shop.Checkout.step{i}(Checkout.java:{i})" for i in range(size // 45))
    return orjson.dumps({"seq": seq, "level": "ERROR", "trace": frames}).decode()


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as fh:
        fh.write(data)


def truncated_count(source: str = "t") -> float:
    return telemetry.METRICS.registry.get_sample_value(
        "logharbor_agent_lines_truncated_total", {"source": source}) or 0.0


def test_a_line_longer_than_a_read_block_ships_whole(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    long = json_line(1, 100 * 1024)
    log.write_text(f"before\n{long}\nafter\n")
    h = Harness(tmp_path / "data", [str(log)], read_block_bytes=4096).start()
    assert h.wait_lines(3)
    h.settle(0.2)
    h.stop()
    assert h.lines == ["before", long, "after"]
    assert h.marked() == []
    assert orjson.loads(h.lines[1])["seq"] == 1


def test_a_line_over_max_line_bytes_ships_cut_and_marked_and_the_next_line_whole(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    long = "é" + "x" * 50_000  # 50,002 bytes: the cut (8192) falls after a 2-byte character
    log.write_text(f"before\n{long}\r\nafter\n")
    cut_before = truncated_count()
    h = Harness(tmp_path / "data", [str(log)], read_block_bytes=4096, max_line_bytes=8192).start()
    assert h.wait_lines(3)
    h.settle(0.2)
    h.stop()
    kept = long.encode()[:8192].decode()
    assert h.lines == ["before", kept, "after"]
    assert h.marked() == [(kept, {"truncated": True, "original_bytes": len(long.encode())})]
    assert truncated_count() == cut_before + 1
    # the checkpoint went past the whole line: a restart reads nothing again
    h2 = Harness(tmp_path / "data", [str(log)], read_block_bytes=4096, max_line_bytes=8192).start()
    h2.settle(0.3)
    h2.stop()
    assert h2.lines == []


def test_a_line_cut_mid_character_keeps_whole_characters(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    long = "x" * 8191 + "€" * 2000  # the cut at 8192 falls inside a 3-byte character
    log.write_text(f"{long}\nafter\n")
    h = Harness(tmp_path / "data", [str(log)], max_line_bytes=8192).start()
    assert h.wait_lines(2)
    h.stop()
    assert h.lines == ["x" * 8191, "after"]
    assert h.marked()[0][1] == {"truncated": True, "original_bytes": len(long.encode())}


def test_a_long_line_written_in_pieces_across_a_crash_comes_out_whole_once(tmp_path: Path) -> None:
    """kill -9 (a crash with only the periodic checkpoints) while a long line is half written:
    nothing of it was shipped, the checkpoint stays before it, and after the restart it ships whole."""
    log = tmp_path / "app.log"
    long = json_line(7, 60 * 1024).encode()
    log.write_bytes(b"first\n" + long[:30_000])
    h = Harness(tmp_path / "data", [str(log)], read_block_bytes=4096).start()
    assert h.wait_lines(1)
    append(log, long[30_000:45_000])
    h.settle(0.3)  # the reader saw the line grow, without its end
    assert h.lines == ["first"]
    h.crash()
    append(log, long[45_000:] + b"\nlast\n")
    h2 = Harness(tmp_path / "data", [str(log)], read_block_bytes=4096).start()
    assert h2.wait_lines(2)
    h2.settle(0.2)
    h2.stop()
    assert h2.lines == [long.decode(), "last"]


def test_the_last_line_of_a_rotated_file_without_newline_ships_once_marked(tmp_path: Path) -> None:
    """A writer cut mid-line by a rename rotation writes the rest of the line to the new file: the
    old file's last line is shipped (once, marked partial) when the old file goes quiet."""
    log = tmp_path / "app.log"
    log.write_text("a\nb-first-half")
    h = Harness(tmp_path / "data", [str(log)]).start()
    assert h.wait_lines(1)
    os.rename(log, tmp_path / "app.log.1")
    log.write_text("-second-half\nc\n")
    assert h.wait_lines(4), h.lines
    h.settle(0.5)
    h.stop()
    assert sorted(h.lines) == sorted(["a", "b-first-half", "-second-half", "c"])
    assert h.marked() == [("b-first-half", {"partial": True})]


def test_a_long_last_line_of_a_rotated_file_ships_cut(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("a\n" + "y" * 20_000)
    h = Harness(tmp_path / "data", [str(log)], read_block_bytes=4096, max_line_bytes=4096).start()
    assert h.wait_lines(1)
    os.rename(log, tmp_path / "app.log.1")
    log.write_text("")
    assert h.wait_lines(2), h.lines
    h.stop()
    assert h.lines == ["a", "y" * 4096]
    assert h.marked() == [("y" * 4096, {"truncated": True, "original_bytes": 20_000})]


def test_nul_bytes_a_crash_left_before_a_line_are_skipped_not_glued_to_it(tmp_path: Path) -> None:
    """Truncate-extend: the file grew by zero-filled bytes (a crash, or a writer going on at its
    old offset after a copytruncate), then the writer appended lines."""
    log = tmp_path / "app.log"
    log.write_bytes(b"one\n" + b"\x00" * 10_000 + b"two\n" + b"\x00" * 300 + b"three\n")
    h = Harness(tmp_path / "data", [str(log)], read_block_bytes=4096).start()
    assert h.wait_lines(3), h.lines
    h.settle(0.2)
    h.stop()
    assert h.lines == ["one", "two", "three"]


def test_nul_bytes_up_to_the_end_are_waited_on(tmp_path: Path) -> None:
    """Zeros at the end may be preallocated space a writer fills next: not skipped meanwhile."""
    log = tmp_path / "app.log"
    one = "one " + "o" * 400  # (longer than the fingerprint: filling the zeros leaves it alone)
    log.write_bytes(one.encode() + b"\n" + b"\x00" * 9000)
    h = Harness(tmp_path / "data", [str(log)], read_block_bytes=4096).start()
    assert h.wait_lines(1)
    h.settle(0.3)
    with open(log, "r+b") as fh:  # the writer fills its preallocated space
        fh.seek(len(one) + 1)
        fh.write(b"two\n")
    assert h.wait_lines(2), h.lines
    append(log, b"three\n")
    assert h.wait_lines(3), h.lines
    h.stop()
    assert h.lines == [one, "two", "three"]


def test_a_compressed_file_with_a_long_line_ships_it_whole_or_cut(tmp_path: Path) -> None:
    long, longer = json_line(1, 30_000), "z" * 50_000
    with gzip.open(tmp_path / "old.log.gz", "wt") as fh:
        fh.write(f"a\n{long}\n{longer}\nb\n")
    h = Harness(tmp_path / "data", [str(tmp_path / "*.gz")], read_block_bytes=4096,
                max_line_bytes=40_000).start()
    assert h.wait_lines(4), h.lines
    h.settle(0.2)
    h.stop()
    assert h.lines == ["a", long, "z" * 40_000, "b"]
    assert h.marked() == [("z" * 40_000, {"truncated": True, "original_bytes": 50_000})]


def test_crlf_lines_across_blocks_lose_their_cr(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    long = "w" * 10_000
    log.write_bytes(f"a\r\n{long}\r\nb\r\n".encode())
    h = Harness(tmp_path / "data", [str(log)], read_block_bytes=4096).start()
    assert h.wait_lines(3)
    h.stop()
    assert h.lines == ["a", long, "b"]


def test_multiline_with_a_long_line_in_a_stack_trace(tmp_path: Path) -> None:
    """The stack-trace joiner sees the long line whole; a cut line ends the open event first."""
    log = tmp_path / "app.log"
    long_frame = "\tat " + "f" * 20_000
    cut = "E" * 30_000
    log.write_text(f"ERROR boom\n\tat a\n{long_frame}\n\tat b\nINFO next\n{cut}\nINFO last\n")
    h = Harness(tmp_path / "data", [str(log)], read_block_bytes=4096, max_line_bytes=25_000,
                multiline={"preset": "java", "timeout": 0.2}).start()
    assert h.wait_lines(4), h.lines
    h.settle(0.5)
    h.stop()
    assert h.lines == [f"ERROR boom\n\tat a\n{long_frame}\n\tat b", "INFO next", "E" * 25_000, "INFO last"]
    assert h.marked() == [("E" * 25_000, {"truncated": True, "original_bytes": 30_000})]


def test_multiline_events_cut_or_split_carry_their_marks_and_the_checkpoint_still_moves_in_order(
        tmp_path: Path) -> None:
    """CRI parts past max_bytes (cut), an event ended at max_lines and its continuation: each
    ships in a chunk of its own with its fields; the offsets move only when every chunk before is
    acknowledged, and end at the file's end."""
    log = tmp_path / "app.log"
    parts = "".join(f"2026-11-01T12:00:00Z stdout P {'p' * 100}\n" for _ in range(5))
    trace = "ERROR x\n" + "".join(f"\tat f{i}\n" for i in range(5))
    log.write_text(parts + "2026-11-01T12:00:00Z stdout F end\n"
                   + "".join(f"2026-11-01T12:00:01Z stdout F {line}\n" for line in trace.splitlines())
                   + "2026-11-01T12:00:02Z stdout F INFO last\n")
    h = Harness(tmp_path / "data", [str(log)], auto_ack=False,
                multiline={"cri": True, "preset": "java", "max_bytes": 256, "max_lines": 4, "timeout": 0.2}).start()
    assert h.wait_lines(4), h.lines
    h.settle(0.3)
    assert h.lines == ["p" * 256, "ERROR x\n\tat f0\n\tat f1\n\tat f2", "\tat f3\n\tat f4", "INFO last"]
    assert [fields for _, fields in h.marked()] == [
        {"truncated": True, "original_bytes": 503}, {"split": "max_lines"}, {"split": "continued"}]
    src = h.source
    assert src is not None
    t = next(iter(src.live.values()))
    for chunk in reversed(h.held):  # acknowledged last first: nothing moves before the first
        assert t.acked_off == 0
        chunk.ack.done()
    assert t.acked_off == log.stat().st_size
    h.stop()


def test_start_at_end_in_the_middle_of_a_line_reads_that_line_whole(tmp_path: Path) -> None:
    """``start_at: end`` used to start at the file's size: when the writer was mid-line, the rest
    of that line shipped as a line of its own (``line`` for ``half-line``)."""
    log = tmp_path / "app.log"
    log.write_text("old 1\nold 2\nhalf-")
    h = Harness(tmp_path / "data", [str(log)], start_at="end").start()
    h.settle(0.3)
    append(log, b"line\nnew\n")
    assert h.wait_lines(2), h.lines
    h.settle(0.2)
    h.stop()
    assert h.lines == ["half-line", "new"]
