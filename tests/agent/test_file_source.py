"""The file source through rotation, restarts and crashes: every line once (or again, never lost).

Each ``test_regression_*`` names one loss or duplicate scenario that shippers are known for.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import time
from pathlib import Path

import orjson
import pytest
from tests.agent.harness import Harness, expected, numbered


def append(path: Path, text: str) -> None:
    with open(path, "a") as fh:
        fh.write(text)


def test_reads_existing_and_appended_lines(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(numbered(0, 100))
    h = Harness(tmp_path / "data", [str(tmp_path / "*.log")]).start()
    assert h.wait_lines(100)
    append(log, numbered(100, 150))
    assert h.wait_lines(150)
    h.stop()
    assert h.lines == expected(0, 150)


def test_partial_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("first\nsecond-without-newline")
    h = Harness(tmp_path / "data", [str(log)]).start()
    assert h.wait_lines(1)
    h.settle(0.4)
    assert h.lines == ["first"]
    append(log, " finished\n")
    assert h.wait_lines(2)
    h.stop()
    assert h.lines == ["first", "second-without-newline finished"]


def test_start_at_end_skips_old_content_but_reads_new_files_whole(tmp_path: Path) -> None:
    (tmp_path / "old.log").write_text(numbered(0, 10, "old"))
    h = Harness(tmp_path / "data", [str(tmp_path / "*.log")], start_at="end").start()
    h.settle(0.3)
    append(tmp_path / "old.log", numbered(10, 12, "old"))
    (tmp_path / "new.log").write_text(numbered(0, 5, "new"))
    assert h.wait_lines(7)
    h.stop()
    assert sorted(h.lines) == sorted(expected(10, 12, "old") + expected(0, 5, "new"))


def test_regression_restart_with_unacknowledged_lines_resends_them(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(numbered(0, 500))
    h = Harness(tmp_path / "data", [str(log)], auto_ack=False).start()
    assert h.wait_lines(500)
    h.settle(0.3)  # periodic checkpoints happen; none may move past unacknowledged lines
    h.crash()
    h2 = Harness(tmp_path / "data", [str(log)]).start()
    assert h2.wait_lines(500)
    h2.stop()
    assert h2.lines == expected(0, 500)


def test_regression_no_duplicates_after_a_clean_restart(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(numbered(0, 300))
    h = Harness(tmp_path / "data", [str(log)]).start()
    assert h.wait_lines(300)
    h.stop()
    append(log, numbered(300, 320))
    h2 = Harness(tmp_path / "data", [str(log)]).start()
    assert h2.wait_lines(20)
    h2.settle(0.3)
    h2.stop()
    assert h2.lines == expected(300, 320)


def test_checkpoint_moves_only_over_acknowledged_chunks_in_order(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(numbered(0, 2000))
    # tiny blocks: many chunks
    h = Harness(tmp_path / "data", [str(log)], auto_ack=False, read_block_bytes=4096).start()
    assert h.wait_lines(2000)
    chunks = h.held
    assert len(chunks) > 3
    src = h.source
    assert src is not None
    t = next(iter(src.live.values()))
    chunks[1].ack.done()
    chunks[2].ack.done()
    assert t.acked_off == 0  # a later delivery cannot move the checkpoint past an earlier one
    chunks[0].ack.done()
    assert t.acked_off == t.pending[0][0] - len(_body(chunks[3]))
    for c in chunks[3:]:
        c.ack.done()
    assert t.acked_off == log.stat().st_size
    h.stop()
    doc = orjson.loads((tmp_path / "data" / "checkpoints" / "t.json").read_bytes())
    assert doc["files"][0]["offset"] == log.stat().st_size


def _body(chunk) -> bytes:  # type: ignore[no-untyped-def]
    return chunk.nbytes * b"x"


def test_rename_and_create_rotation_reads_the_old_file_to_its_end(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(numbered(0, 100))
    h = Harness(tmp_path / "data", [str(log)]).start()
    assert h.wait_lines(100)
    with open(log, "a") as old:  # the app still holds the old file open
        os.rename(log, tmp_path / "app.log.1")
        old.write(numbered(100, 120))  # written after the rename, before the app reopens
    log.write_text(numbered(120, 150))
    assert h.wait_lines(150)
    h.settle(0.6)
    h.stop()
    assert sorted(h.lines) == expected(0, 150)


def test_regression_agent_down_across_a_rename_rotation(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(numbered(0, 100))
    h = Harness(tmp_path / "data", [str(log)]).start()
    assert h.wait_lines(100)
    h.crash()
    append(log, numbered(100, 130))  # written while the agent is down …
    os.rename(log, tmp_path / "app.log.1")  # … then rotated away from the glob
    log.write_text(numbered(130, 140))
    h2 = Harness(tmp_path / "data", [str(log)]).start()
    assert h2.wait_lines(40)
    h2.settle(0.5)
    h2.stop()
    assert sorted(h2.lines) == expected(100, 140)


def test_regression_copytruncate_keeps_lines_written_before_the_truncation(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(numbered(0, 100))
    h = Harness(tmp_path / "data", [str(log)]).start()
    assert h.wait_lines(100)
    h.crash()
    append(log, numbered(100, 140))  # not read yet when logrotate copies and truncates
    shutil.copyfile(log, tmp_path / "app.log.1")
    with open(log, "r+") as fh:
        fh.truncate(0)
    append(log, numbered(140, 160))
    h2 = Harness(tmp_path / "data", [str(log)]).start()
    assert h2.wait_lines(60)
    h2.settle(0.5)
    h2.stop()
    assert sorted(h2.lines) == expected(100, 160)


def test_copytruncate_while_running_with_the_copy_in_the_glob(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(numbered(0, 100))
    h = Harness(tmp_path / "data", [str(tmp_path / "app.log*")]).start()
    assert h.wait_lines(100)
    shutil.copyfile(log, tmp_path / "app.log.1")
    with open(log, "r+") as fh:
        fh.truncate(0)
    append(log, numbered(100, 130))
    assert h.wait_lines(130)
    h.settle(0.6)
    h.stop()
    assert sorted(h.lines) == expected(0, 130)


def test_regression_rotated_then_compressed_file_is_not_read_again(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(numbered(0, 100))
    h = Harness(tmp_path / "data", [str(tmp_path / "app.log*")]).start()
    assert h.wait_lines(100)
    os.rename(log, tmp_path / "app.log.1")
    log.write_text(numbered(100, 110))
    assert h.wait_lines(110)
    h.settle(0.3)
    with open(tmp_path / "app.log.1", "rb") as src, gzip.open(tmp_path / "app.log.1.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    os.unlink(tmp_path / "app.log.1")
    append(log, numbered(110, 120))
    assert h.wait_lines(120)
    h.settle(1.0)
    h.stop()
    assert sorted(h.lines) == expected(0, 120)


def test_gzip_file_never_seen_is_read_whole(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "old.log.gz", "wt") as fh:
        fh.write(numbered(0, 50) + "last-without-newline")
    h = Harness(tmp_path / "data", [str(tmp_path / "*.gz")]).start()
    assert h.wait_lines(51)
    h.stop()
    assert h.lines == [*expected(0, 50), "last-without-newline"]


def test_deleted_while_open_is_read_to_its_end(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(numbered(0, 10))
    h = Harness(tmp_path / "data", [str(log)]).start()
    assert h.wait_lines(10)
    with open(log, "a") as fh:
        os.unlink(log)
        fh.write(numbered(10, 20))
    assert h.wait_lines(20)
    h.settle(0.6)
    assert h.source is not None and not h.source.live  # closed once idle (rotated_idle_secs)
    h.stop()
    assert h.lines == expected(0, 20)


def test_regression_a_file_name_that_is_not_utf8_is_read_and_checkpointed(tmp_path: Path) -> None:
    """One such name among the matches used to stop the whole source (the checkpoint could not be
    written as JSON): now its lines ship with the name shown escaped, and the checkpoint keeps the
    exact bytes, so a restart resumes it instead of reading it again."""
    from logharbor.agent.pipeline import encode

    odd = os.path.join(os.fsencode(tmp_path), b"app-\xff.log")
    with open(odd, "w") as fh:
        fh.write(numbered(0, 10))
    (tmp_path / "good.log").write_text(numbered(0, 5, "good"))
    h = Harness(tmp_path / "data", [str(tmp_path / "*.log")])
    shipped: list[bytes] = []
    emit = h._emit
    h._emit = lambda chunk: (shipped.append(encode(chunk).payload), emit(chunk))  # type: ignore[method-assign]
    h.start()
    assert h.wait_lines(15)
    h.stop()
    files = {orjson.loads(line)["file"] for payload in shipped for line in payload.splitlines()}
    assert files == {str(tmp_path / "app-\\xff.log"), str(tmp_path / "good.log")}
    with open(odd, "a") as fh:
        fh.write(numbered(10, 13))
    again = Harness(tmp_path / "data", [str(tmp_path / "*.log")]).start()
    assert again.wait_lines(3)
    assert again.wait_looks(3)  # time to read anything else there would be
    again.stop()
    assert again.lines == expected(10, 13)  # resumed: the first ten lines are not read again
    # and the agent's JSON log can say its name
    from logharbor.agent.telemetry import JsonFormatter

    record = logging.LogRecord("logharbor.agent", logging.INFO, __file__, 1, "file opened", None, None)
    record.fields = {"path": os.fsdecode(odd)}
    assert orjson.loads(JsonFormatter().format(record))["path"] == str(tmp_path / "app-\\xff.log")


def test_regression_inode_reuse_does_not_skip_data(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(numbered(0, 30, "new"))
    st = log.stat()
    # a checkpoint left by an older file that had the same device and inode, read far further
    ckpt = tmp_path / "data" / "checkpoints" / "t.json"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(orjson.dumps({"version": 1, "files": [{
        "dev": st.st_dev, "ino": st.st_ino, "fp_len": 50, "fp_hash": "0" * 24, "offset": 10**6,
        "path": str(log), "updated": 0.0, "ghost": False, "gzip": False}]}))
    h = Harness(tmp_path / "data", [str(log)]).start()
    assert h.wait_lines(30)
    h.stop()
    assert h.lines == expected(0, 30, "new")


def test_checkpoint_write_is_atomic_and_the_temp_file_is_read_first(tmp_path: Path) -> None:
    from logharbor.agent import statefile
    from logharbor.agent.checkpoint import CheckpointStore, Entry

    store = CheckpointStore(tmp_path / "c.json")
    e = Entry(1, 2, 10, "ab", 100, "/x", 0.0)
    assert store.write([e]) is True
    assert store.write([e]) is False  # unchanged: not written again
    assert not store.tmp.exists()
    # a crash after the temp file was fsync'd but before the rename: the temp file is newer
    newer = orjson.loads(store.path.read_bytes())
    newer["files"][0]["offset"] = 200
    store.tmp.write_bytes(statefile.dump(newer))
    assert CheckpointStore(tmp_path / "c.json").load()[0].offset == 200
    # a crash while writing the temp file: it does not parse and is ignored
    store.tmp.write_bytes(b'{"version": 1, "files": [{"dev"')
    assert CheckpointStore(tmp_path / "c.json").load()[0].offset == 100


def test_multiline_events_and_a_crash_inside_an_event_loses_nothing(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    trace = "Traceback (most recent call last):\n  File \"x.py\", line 1, in <module>\nValueError: boom\n"
    log.write_text("2026-01-01 start one\n" + trace + "2026-01-01 second\n")
    opts = {"multiline": {"preset": "python", "timeout": 0.2}}
    h = Harness(tmp_path / "data", [str(log)], auto_ack=True, **opts).start()
    assert h.wait_lines(2)
    h.settle(0.3)
    assert h.lines == ["2026-01-01 start one\n" + trace.rstrip("\n"), "2026-01-01 second"]
    h.crash()
    # crash while an event is open: its first line was read but never shipped as an event
    append(log, "2026-01-01 third\n  continued\n")
    slow = {"multiline": {"start_pattern": r"^\d{4}-", "timeout": 60}}
    h2 = Harness(tmp_path / "data", [str(log)], **slow).start()
    h2.settle(0.5)  # the block was read and acknowledged, but its event is still open
    assert h2.lines == []
    h2.crash()  # the checkpoint must not have moved past the open event's lines
    opts = {"multiline": {"start_pattern": r"^\d{4}-", "timeout": 0.2}}
    h3 = Harness(tmp_path / "data", [str(log)], **opts).start()
    assert h3.wait_lines(1)
    h3.settle(0.5)
    h3.stop()
    assert h3.lines == ["2026-01-01 third\n  continued"]


def test_regression_agent_down_across_a_rename_and_a_copytruncate_of_an_unseen_file(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(numbered(0, 100))
    h = Harness(tmp_path / "data", [str(log)]).start()
    assert h.wait_lines(100)
    h.settle(0.3)
    h.crash()
    time.sleep(1.1)  # file times are compared with the checkpoint's: make "later" unambiguous
    append(log, numbered(100, 120))
    os.rename(log, tmp_path / "app.log.1")  # rotation 1 (rename) while the agent is down
    log.write_text(numbered(120, 150))  # a file the agent never sees as such …
    shutil.copyfile(log, tmp_path / "app.log.2")  # … rotation 2 (copytruncate) copies it away
    with open(log, "r+") as fh:
        fh.truncate(0)
    append(log, numbered(150, 160))
    h2 = Harness(tmp_path / "data", [str(log)]).start()
    assert h2.wait_lines(60)
    h2.settle(0.6)
    h2.stop()
    assert sorted(h2.lines) == expected(100, 160)


BANNER = "# service started, log format v2, all times UTC " * 8 + "\n"  # > fingerprint_bytes


def test_regression_files_that_start_alike_are_not_taken_for_copies(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text(BANNER + numbered(0, 10, "a"))
    (tmp_path / "b.log").write_text(BANNER + numbered(0, 10, "b"))
    h = Harness(tmp_path / "data", [str(tmp_path / "*.log")]).start()
    assert h.wait_lines(22)
    h.stop()
    assert sorted(h.lines) == sorted([BANNER.rstrip("\n")] * 2 + expected(0, 10, "a") + expected(0, 10, "b"))


def test_regression_a_new_file_like_a_finished_one_is_read_from_its_start(tmp_path: Path) -> None:
    day1 = tmp_path / "app-2026-11-24.log"
    day1.write_text(BANNER + numbered(0, 300, "d1"))
    h = Harness(tmp_path / "data", [str(tmp_path / "app-*.log")]).start()
    assert h.wait_lines(301)
    os.unlink(day1)  # retired, its state (and fingerprint) kept
    h.settle(0.6)
    (tmp_path / "app-2026-11-25.log").write_text(BANNER + numbered(0, 400, "d2"))  # longer than day 1
    assert h.wait_lines(702)
    h.settle(0.3)
    h.stop()
    assert h.lines[301:] == [BANNER.rstrip("\n"), *expected(0, 400, "d2")]


def test_regression_a_deleted_files_inode_reused_by_a_look_alike_is_read_whole(tmp_path: Path) -> None:
    day1 = tmp_path / "app-2026-11-24.log"
    day1.write_text(BANNER + numbered(0, 300, "d1"))
    h = Harness(tmp_path / "data", [str(tmp_path / "app-*.log")]).start()
    assert h.wait_lines(301)
    os.unlink(day1)
    assert wait_until(lambda: h.source is not None and not h.source.live)  # read to the end, closed
    h.settle(0.3)
    h.crash()
    day2 = tmp_path / "app-2026-11-25.log"
    day2.write_text(BANNER + numbered(0, 400, "d2"))
    # the filesystem gave day 2 the inode day 1 had (forced here by editing the checkpoint)
    ckpt = tmp_path / "data" / "checkpoints" / "t.json"
    doc = orjson.loads(ckpt.read_bytes())
    st = day2.stat()
    for e in doc["files"]:
        e["dev"], e["ino"] = st.st_dev, st.st_ino
    ckpt.write_bytes(orjson.dumps(doc))
    h2 = Harness(tmp_path / "data", [str(tmp_path / "app-*.log")]).start()
    assert h2.wait_lines(401)
    h2.stop()
    assert h2.lines == [BANNER.rstrip("\n"), *expected(0, 400, "d2")]


def wait_until(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_gzip_file_of_two_members_is_read_whole(tmp_path: Path) -> None:
    """``cat a.gz b.gz`` is one valid gzip file; the second member holds lines too."""
    first, second = numbered(0, 3), numbered(3, 60)  # the first member is shorter than a fingerprint
    (tmp_path / "app.log.2.gz").write_bytes(gzip.compress(first.encode()) + gzip.compress(second.encode()))
    h = Harness(tmp_path / "data", [str(tmp_path / "*.gz")]).start()
    assert h.wait_lines(60)
    h.settle(0.3)
    h.stop()
    assert h.lines == expected(0, 60)


def test_a_rotated_file_compressed_into_two_members_is_not_read_again(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(numbered(0, 100))
    h = Harness(tmp_path / "data", [str(tmp_path / "app.log*")]).start()
    assert h.wait_lines(100)
    os.rename(log, tmp_path / "app.log.1")
    log.write_text(numbered(100, 110))
    assert h.wait_lines(110)
    h.settle(0.5)
    body = (tmp_path / "app.log.1").read_bytes()
    (tmp_path / "app.log.1.gz").write_bytes(gzip.compress(body[:40]) + gzip.compress(body[40:]))
    os.unlink(tmp_path / "app.log.1")
    append(log, numbered(110, 120))
    assert h.wait_lines(120)
    h.settle(1.0)
    h.stop()
    assert sorted(h.lines) == expected(0, 120)


@pytest.mark.parametrize("codec", ["zstd", "bzip2", "xz"])
def test_a_rotated_file_compressed_otherwise_is_read_with_every_frame(tmp_path: Path, codec: str) -> None:
    """logrotate's compresscmd may be zstd, bzip2 or xz; a file of several frames or streams is read
    whole (a zstd reader stops after the first frame unless told otherwise)."""
    import bz2
    import lzma

    import zstandard

    compress = {"zstd": zstandard.ZstdCompressor().compress, "bzip2": bz2.compress, "xz": lzma.compress}[codec]
    first, second = numbered(0, 40).encode(), numbered(40, 90).encode()
    (tmp_path / "app.log.3.z").write_bytes(compress(first) + compress(second))
    h = Harness(tmp_path / "data", [str(tmp_path / "app.log.*")]).start()
    assert h.wait_lines(90)
    h.settle(0.3)
    h.stop()
    assert h.lines == expected(0, 90)


def test_a_zstd_file_still_being_written_is_not_read_past_its_cut(tmp_path: Path) -> None:
    import zstandard

    body = zstandard.ZstdCompressor().compress(numbered(0, 200).encode())
    gz = tmp_path / "app.log.1.zst"
    gz.write_bytes(body[: len(body) // 2])  # the compressor is half way through
    h = Harness(tmp_path / "data", [str(tmp_path / "*.zst")]).start()
    h.wait_looks(3)
    assert h.lines == []  # nothing from a frame cut short
    gz.write_bytes(body)
    assert h.wait_lines(200)
    h.settle(0.3)
    h.stop()
    assert h.lines == expected(0, 200)
