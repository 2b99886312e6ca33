"""Rotations while the reader is paused by backpressure (a full sink buffer: the reader waits in
emit for as long as the server is down). The watcher keeps looking meanwhile; no rotation, of
either kind, however many, may lose a line. Each ``test_regression_*`` is a loss that was seen."""

from __future__ import annotations

import gzip
import os
import shutil
import time
from pathlib import Path

import orjson
from tests.agent.harness import Harness, expected, numbered

from logharbor.agent import telemetry


def append(path: Path, text: str) -> None:
    with open(path, "a") as fh:
        fh.write(text)


def shift(log: Path) -> None:
    """logrotate's numbering: app.log.N → app.log.N+1, highest first."""
    rotated = sorted((p for p in log.parent.glob(log.name + ".*") if p.name.rsplit(".", 1)[1].isdigit()),
                     key=lambda p: -int(p.name.rsplit(".", 1)[1]))
    for p in rotated:
        os.rename(p, f"{log}.{int(p.name.rsplit('.', 1)[1]) + 1}")


def copytruncate(log: Path) -> None:
    shift(log)
    shutil.copyfile(log, f"{log}.1")
    os.truncate(log, 0)


def rename_rotate(log: Path) -> None:
    shift(log)
    os.rename(log, f"{log}.1")
    log.touch()


def test_regression_copytruncate_while_paused_is_read_from_the_copy(tmp_path: Path) -> None:
    """The outside tester's case: the buffer filled, the reader stopped, the file was
    copytruncated, and the agent then opened the empty file: what it had not read was lost."""
    log = tmp_path / "app.log"
    log.write_text(numbered(0, 2000))
    h = Harness(tmp_path / "data", [str(log)], read_block_bytes=4096)
    h.pause()  # the sink is full: the reader gets stuck in emit with its first block
    h.start()
    assert h.wait_looks(2)
    append(log, numbered(2000, 2500))
    copytruncate(log)
    append(log, numbered(2500, 2600))
    assert h.wait_looks(3)
    h.resume()
    assert h.wait_lines(2600)
    h.settle(0.5)
    h.stop()
    assert sorted(h.lines) == expected(0, 2600) and len(h.lines) == 2600  # every line, once
    # in order within each file (the copy, and the truncated file, are read side by side)
    assert [x for x in h.lines if x < "line-0002500"] == expected(0, 2500)
    assert [x for x in h.lines if x >= "line-0002500"] == expected(2500, 2600)


def test_many_rotations_of_both_kinds_while_paused(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(numbered(0, 500))
    h = Harness(tmp_path / "data", [str(log)], read_block_bytes=4096)
    h.pause()
    h.start()
    n = 500
    for kind in ("copytruncate", "rename", "copytruncate", "rename", "rename", "copytruncate"):
        append(log, numbered(n, n + 300))
        n += 300
        assert h.wait_looks(2)  # the watcher sees this content at its path before it rotates
        (copytruncate if kind == "copytruncate" else rename_rotate)(log)
    append(log, numbered(n, n + 100))
    n += 100
    assert h.wait_looks(2)
    h.resume()
    assert h.wait_lines(n, timeout=30), len(set(h.lines))
    h.settle(0.5)
    h.stop()
    assert sorted(set(h.lines)) == expected(0, n)
    assert len(h.lines) == n  # and none twice


def test_rotations_faster_than_the_watcher_looks_while_paused(tmp_path: Path) -> None:
    """Contents that lived and rotated away between two looks (each read whole from its
    rotated name: it is named like a rotation and its content is unknown)."""
    log = tmp_path / "app.log"
    log.write_text(numbered(0, 200))
    h = Harness(tmp_path / "data", [str(log)], read_block_bytes=4096, glob_interval_secs=0.5)
    h.pause()
    h.start()
    assert h.wait_looks(1)
    n = 200
    for kind in ("rename", "copytruncate", "rename", "copytruncate"):  # no look in between
        append(log, numbered(n, n + 50, f"fast-{kind}"))
        (copytruncate if kind == "copytruncate" else rename_rotate)(log)
        n += 50
    append(log, numbered(0, 10, "last"))
    assert h.wait_looks(3)
    h.resume()
    want = sorted(expected(0, 200) + [x for i, k in enumerate(("rename", "copytruncate", "rename",
                                                                "copytruncate"))
                                       for x in expected(200 + 50 * i, 250 + 50 * i, f"fast-{k}")]
                  + expected(0, 10, "last"))
    assert h.wait_lines(len(want), timeout=30)
    h.settle(0.5)
    h.stop()
    assert sorted(set(h.lines)) == want


def test_a_copy_compressed_at_once_is_read_through_gzip_from_the_offset(tmp_path: Path) -> None:
    """logrotate with copytruncate and compress (no delaycompress): the copy is gzip'd and the
    plain copy removed before the reader comes back."""
    log = tmp_path / "app.log"
    log.write_text(numbered(0, 1000))
    h = Harness(tmp_path / "data", [str(log)], read_block_bytes=4096)
    h.pause()
    h.start()
    assert h.wait_looks(2)
    append(log, numbered(1000, 1200))
    body = log.read_bytes()
    (tmp_path / "app.log.1.gz").write_bytes(gzip.compress(body[:5000]) + gzip.compress(body[5000:]))
    os.truncate(log, 0)
    append(log, numbered(1200, 1250))
    assert h.wait_looks(2)
    h.resume()
    assert h.wait_lines(1250)
    h.settle(0.5)
    h.stop()
    assert sorted(h.lines) == expected(0, 1250) and len(h.lines) == 1250
    assert [x for x in h.lines if x < "line-0001200"] == expected(0, 1200)  # in order, from the gzip'd copy


def test_rotate_wait_when_set_counts_and_logs_what_it_gives_up(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "app.log"
    log.write_text(numbered(0, 3000))
    h = Harness(tmp_path / "data", [str(log)], read_block_bytes=4096, rotate_wait_secs=0.3)
    counter = telemetry.METRICS.dropped_bytes.labels("t", "rotate_wait")
    before = counter._value.get()
    h.pause()
    h.start()
    assert h.wait_looks(1)
    rename_rotate(log)
    append(log, numbered(3000, 3010))
    time.sleep(0.3)  # let the bound pass: what it does then is what is tested
    assert h.wait_looks(3)
    h.resume()
    assert h.wait_lines(10)
    h.settle(0.5)
    h.stop()
    dropped = counter._value.get() - before
    read = {int(x.split("-")[1].split()[0]) for x in h.lines}
    assert dropped > 0 and 3000 - len(read & set(range(3000))) > 0  # given up: counted, not silent
    unread = sum(len(x) + 1 for x in expected(0, 3000) if int(x.split("-")[1].split()[0]) not in read)
    assert dropped == unread
    assert any("input given up unread" in r.getMessage() for r in caplog.records)
    assert {x for x in h.lines if x.startswith("line-00030")} >= set(expected(3000, 3010))


BANNER = "# service started, log format v2, all times UTC " * 8 + "\n"  # > fingerprint_bytes


def test_regression_truncated_and_rewritten_past_the_offset_while_down(tmp_path: Path) -> None:
    """Same first bytes (a banner), a new content longer than the old offset: only the mark of
    the bytes before the offset tells it is not the content that was read."""
    log = tmp_path / "app.log"
    log.write_text(BANNER + numbered(0, 100, "old"))
    h = Harness(tmp_path / "data", [str(log)]).start()
    assert h.wait_lines(101)
    h.crash()
    append(log, numbered(100, 120, "old"))
    copytruncate(log)
    log.write_text(BANNER + numbered(0, 300, "new"))
    h2 = Harness(tmp_path / "data", [str(log)]).start()
    assert h2.wait_lines(20 + 301)
    h2.settle(0.5)
    h2.stop()
    assert sorted(h2.lines) == sorted([*expected(100, 120, "old"), BANNER.rstrip("\n"), *expected(0, 300, "new")])
    doc = orjson.loads((tmp_path / "data" / "checkpoints" / "t.json").read_bytes())
    assert doc["version"] == 2 and all("mark" in e for e in doc["files"])
