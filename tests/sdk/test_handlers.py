"""The non-blocking handler: bounded queue, lowest levels dropped first, drops reported, flush at exit."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

from sdk_helpers import parse_lines

from logharbor.sdk.formatter import JSONFormatter
from logharbor.sdk.handlers import AsyncHandler, FileOutput


class GatedOutput:
    """An output that blocks until released: stands for a stuck pipe or disk."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.lines: list[bytes] = []

    def write(self, lines: list[bytes]) -> None:
        self.entered.set()
        self.gate.wait(30)
        self.lines.extend(lines)

    def flush(self, timeout: float = 10.0) -> bool:
        return True

    def close(self, timeout: float) -> None:
        pass


def _logger(name: str, handler: logging.Handler) -> logging.Logger:
    log = logging.getLogger(name)
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(1)
    return log


def test_caller_never_waits_and_lowest_levels_go_first() -> None:
    out = GatedOutput()
    handler = AsyncHandler([out], JSONFormatter({"service": "q"}), queue_size=100, report_interval=0.0)
    log = _logger("test.queue", handler)
    try:
        log.info("first")  # the worker takes it and blocks in write()
        assert out.entered.wait(10)
        for i in range(300):
            log.debug("debug %d", i)
            log.info("info %d", i)
            log.warning("warn %d", i)
            log.error("error %d", i)
        stats = handler.stats()
        # a record is refused once the queue holds its level's budget: DEBUG 90, INFO 100,
        # WARN 110, ERROR 125 — replay the interleaved calls against those budgets
        budget = {"DEBUG": 90, "INFO": 100, "WARN": 110, "ERROR": 125}
        queued, dropped = 0, dict.fromkeys(budget, 0)
        for _ in range(300):
            for level, limit in budget.items():
                if queued >= limit:
                    dropped[level] += 1
                else:
                    queued += 1
        assert stats["queued"] == queued == 125
        assert stats["dropped"] == dropped
        assert dropped["DEBUG"] > dropped["INFO"] > dropped["WARN"] > dropped["ERROR"]
        out.gate.set()
        assert handler.flush(10)
        lines = parse_lines(b"".join(out.lines))
        kept = [line["message"] for line in lines if line["logger"] == "test.queue"]
        assert kept[0] == "first" and len(kept) == 1 + queued
        # order is kept: the queue is one FIFO
        assert kept[1:4] == ["debug 0", "info 0", "warn 0"]
        report = [line for line in lines if line["logger"] == "logharbor.sdk"]
        assert len(report) == 1
        assert report[0]["level"] == "WARN"
        assert report[0]["dropped"] == stats["dropped"]
        assert report[0]["dropped_total"] == sum(stats["dropped"].values())
    finally:
        out.gate.set()
        handler.close()


def test_mutable_arguments_are_formatted_at_the_call() -> None:
    out = GatedOutput()
    handler = AsyncHandler([out], JSONFormatter({"service": "q"}))
    log = _logger("test.args", handler)
    try:
        log.info("warm")
        assert out.entered.wait(10)
        cart = ["apple"]
        log.info("cart %s, user %s", cart, "u-1")
        cart.append("pear")  # after the call: must not show in the line
        out.gate.set()
        assert handler.flush(10)
        messages = [line["message"] for line in parse_lines(b"".join(out.lines))]
        assert messages == ["warm", "cart ['apple'], user u-1"]
    finally:
        out.gate.set()
        handler.close()


def test_file_output_follows_rotation(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    handler = AsyncHandler([FileOutput(path)], JSONFormatter({"service": "f"}))
    log = _logger("test.file", handler)
    try:
        log.info("one")
        assert handler.flush(10)
        os.rename(path, tmp_path / "app.log.1")
        log.info("two")
        assert handler.flush(10)
        assert [r["message"] for r in parse_lines((tmp_path / "app.log.1").read_bytes())] == ["one"]
        assert [r["message"] for r in parse_lines(path.read_bytes())] == ["two"]
    finally:
        handler.close()


def test_flushed_at_exit_and_in_forked_children(tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    out = tmp_path / "out.log"
    script.write_text(f"""
import logging, os
from logharbor import sdk
sdk.configure(service="exiting", output={str(out)!r})
log = logging.getLogger("bye")
for i in range(2000):
    log.info("line %d", i)
pid = os.fork()
if pid == 0:
    log.info("from the child")  # a fresh worker thread writes it; exit handlers flush it
    raise SystemExit(0)
os.waitpid(pid, 0)
log.info("last words")
""")
    subprocess.run([sys.executable, str(script)], check=True, timeout=30)
    lines = parse_lines(out.read_bytes())
    messages = [line["message"] for line in lines]
    assert messages.count("last words") == 1
    assert messages.count("from the child") == 1
    assert [m for m in messages if m.startswith("line ")] == [f"line {i}" for i in range(2000)]
    child = next(line for line in lines if line["message"] == "from the child")
    parent = next(line for line in lines if line["message"] == "last words")
    assert child["service"] == parent["service"] == "exiting"
    assert child["instance"] != parent["instance"]  # exiting-<pid>: each process its own


def test_configure_again_replaces_and_drains(capture) -> None:  # type: ignore[no-untyped-def]
    first = capture(service="one")
    log = logging.getLogger("again")
    for i in range(500):
        log.info("first %d", i)
    second = capture(service="two")
    log.info("after")
    assert [r["message"] for r in parse_lines(first.buffer.getvalue())] == [f"first {i}" for i in range(500)]
    assert [(r["service"], r["message"]) for r in second.records()] == [("two", "after")]
    assert logging.getLogger().handlers == [second.handler]


class SlowOutput:
    """Takes a little time per batch, so a burst from many threads overflows the queue."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def write(self, lines: list[bytes]) -> None:
        threading.Event().wait(0.002)
        self.lines.extend(lines)

    def flush(self, timeout: float = 10.0) -> bool:
        return True

    def close(self, timeout: float) -> None:
        pass


def test_many_threads_every_record_accounted_for() -> None:
    out = SlowOutput()
    handler = AsyncHandler([out], JSONFormatter({"service": "q"}), queue_size=500, report_interval=3600)
    log = _logger("test.threads", handler)
    per_thread, threads = 3000, 8

    def produce(t: int) -> None:
        for i in range(per_thread):
            log.log((logging.DEBUG, logging.INFO, logging.WARNING)[i % 3], "t%d i%d", t, i)

    workers = [threading.Thread(target=produce, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    try:
        assert handler.flush(30)
        stats = handler.stats()
        written = [line for line in parse_lines(b"".join(out.lines)) if line["logger"] == "test.threads"]
        assert len(written) == stats["written"]
        assert stats["written"] + sum(stats["dropped"].values()) == per_thread * threads
        assert stats["dropped"]["DEBUG"] >= stats["dropped"]["WARN"] > 0  # overflowed, lowest first
        # each thread's records stay in its own order
        for t in range(threads):
            mine = [int(r["message"].split("i")[1]) for r in written if r["message"].startswith(f"t{t} ")]
            assert mine == sorted(mine)
    finally:
        handler.close()


def test_lines_logged_by_later_exit_handlers_are_written(tmp_path: Path) -> None:
    script = tmp_path / "late.py"
    out = tmp_path / "late.log"
    script.write_text(f"""
import atexit, logging
atexit.register(lambda: logging.getLogger("late").warning("from an exit handler"))  # runs last
from logharbor import sdk
sdk.configure(service="late", output={str(out)!r})
logging.getLogger("late").info("during the run")
""")
    subprocess.run([sys.executable, str(script)], check=True, timeout=30)
    assert [line["message"] for line in parse_lines(out.read_bytes())] == [
        "during the run", "from an exit handler"]
