"""Fan-out that does not stall: one file source, two sinks, one of whose receivers goes bad
(connection refused, or a listener that accepts and never answers). The healthy sink's delivery
must not slow down by more than one batch interval, the source's checkpoint keeps moving (the
bad sink's disk buffer acknowledges), and when the bad receiver is back it gets everything —
also after a ``kill -9`` of the agent while it was down."""

from __future__ import annotations

import contextlib
import json
import socket
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from tests.agent.conftest import Receiver, free_port, wait_for

BATCH = 1.0  # the sinks' batch interval (batch.timeout_secs): the unit delays are measured in
TICK = 0.25


class Writer:
    """Appends numbered JSON lines: ``filler`` per tick plus one probe, whose write time is kept."""

    def __init__(self, path: Path, filler: int = 100) -> None:
        self.path, self.filler = path, filler
        self.seq = 0
        self.written: dict[int, float] = {}  # probe seq -> when written (monotonic)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Writer:
        self._thread.start()
        return self

    def _run(self) -> None:
        pad = "x" * 80
        with open(self.path, "a") as fh:
            while not self._stop.is_set():
                for _ in range(self.filler):
                    fh.write(f'{{"seq":{self.seq},"msg":"filler {pad}"}}\n')
                    self.seq += 1
                fh.write(f'{{"seq":{self.seq},"msg":"probe"}}\n')
                fh.flush()
                self.written[self.seq] = time.monotonic()
                self.seq += 1
                self._stop.wait(TICK)

    def probes_since(self, since: float) -> int:
        """How many probes were written at or after ``since`` (a copy: the thread adds more)."""
        return sum(t >= since for t in list(self.written.values()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class Watcher:
    """Polls a receiver's output file and notes when each probe first appeared."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.seen: dict[int, float] = {}
        self._pos = 0
        self._rest = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.out.exists():
                with open(self.out, "rb") as fh:
                    fh.seek(self._pos)
                    data = fh.read()
                self._pos += len(data)
                now = time.monotonic()
                lines = (self._rest + data).split(b"\n")
                self._rest = lines.pop()
                for line in lines:
                    if b'"probe"' in line:
                        self.seen.setdefault(json.loads(line)["seq"], now)
            self._stop.wait(0.02)

    def latencies(self, probes: dict[int, float], start: float, end: float) -> list[float]:
        # a copy: the writer thread adds probes meanwhile (iterating the live dict could raise)
        return [self.seen[s] - t for s, t in list(probes.items()) if start <= t < end and s in self.seen]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class BlackHole:
    """Accepts TCP connections and never answers (nor reads)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(64)
        self.conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept(): close alone would not free it
        self.sock.close()
        self._thread.join(5)
        for c in self.conns:
            c.close()


def config(tmp: Path, good: str, bad: str) -> dict[str, Any]:
    return {
        "data_dir": str(tmp / "agent-data"), "metrics": {"port": 0}, "shutdown_timeout_secs": 3,
        "sources": {"app": {"type": "file", "include": [str(tmp / "app.log")], "parser": "json",
                            "poll_interval_secs": 0.05, "checkpoint_interval_secs": 0.2}},
        "sinks": {
            "good": {"type": "logharbor", "url": good, "batch": {"timeout_secs": BATCH},
                     "retry_max_secs": 0.5},
            "bad": {"type": "logharbor", "url": bad, "batch": {"timeout_secs": BATCH},
                    "retry_initial_secs": 0.1, "retry_max_secs": 0.5, "timeout_secs": 2,
                    "buffer": {"type": "disk", "max_bytes": 256 * 1024 * 1024}},
        },
    }


def seqs(r: Receiver) -> list[int]:
    return sorted(x["seq"] for x in r.records())


def checkpoint_offset(tmp: Path) -> int:
    path = tmp / "agent-data" / "checkpoints" / "app.json"
    try:
        return int(json.loads(path.read_bytes())["files"][0]["offset"])
    except (OSError, ValueError, KeyError, IndexError):
        return -1


@pytest.mark.slow
@pytest.mark.parametrize("failure", ["refused", "no_answer"])
def test_a_bad_sink_does_not_delay_the_healthy_one_and_gets_everything_back(
        tmp_path: Path, receiver_factory: Any, agent_factory: Any, failure: str) -> None:
    good = receiver_factory()
    bad_port = free_port()
    bad = receiver_factory(port=bad_port)
    watcher = Watcher(good.out)
    writer = Writer(tmp_path / "app.log").start()
    agent = agent_factory(config(tmp_path, good.url, bad.url))
    try:
        # phase 1, both receivers up: the baseline delay of the healthy sink
        assert wait_for(lambda: len(watcher.seen) >= 4, 30), agent.log()
        # each phase lasts as many probes as it needs (counted, not slept: a loaded machine writes
        # them more slowly and would otherwise leave fewer than the assertions below ask for)
        t0 = time.monotonic()
        assert wait_for(lambda: writer.probes_since(t0) >= 12, 60)
        # phase 2: the bad receiver goes bad
        bad.kill()
        hole = BlackHole(bad_port) if failure == "no_answer" else None
        t1 = time.monotonic()
        assert wait_for(lambda: writer.probes_since(t1 + BATCH) >= 20, 60)
        t2 = time.monotonic()
        assert wait_for(lambda: all(s in watcher.seen for s, t in list(writer.written.items()) if t < t2),
                        10 * BATCH), "the healthy sink stopped delivering"
        base = watcher.latencies(writer.written, t0, t1)
        down = watcher.latencies(writer.written, t1 + BATCH, t2)  # after the failure is felt
        assert len(base) >= 8 and len(down) >= 16
        # the healthy sink is not delayed by more than one batch interval (generous bounds:
        # medians, and the worst probe within two intervals of the worst baseline one)
        assert statistics.median(down) <= statistics.median(base) + BATCH, (base, down)
        assert max(down) <= max(base) + 2 * BATCH, (base, down)
        # ... and the source's checkpoint moves on: the disk buffer acknowledged the chunks
        size = (tmp_path / "app.log").stat().st_size
        assert wait_for(lambda: checkpoint_offset(tmp_path) >= size, 10)

        # phase 3: the agent dies with the bad receiver still down; what the disk buffer
        # acknowledged must survive kill -9
        writer.stop()
        total = writer.seq
        assert wait_for(lambda: checkpoint_offset(tmp_path) == (tmp_path / "app.log").stat().st_size, 10)
        agent.kill9()
        if hole is not None:
            hole.close()
        back = receiver_factory(port=bad_port)
        agent2 = agent_factory(config(tmp_path, good.url, bad.url), name="agent2")
        assert wait_for(lambda: len(set(seqs(back)) | set(seqs(bad))) >= total, 60), agent2.log()
        assert wait_for(lambda: len(seqs(good)) >= total, 30)
        assert agent2.stop() == 0  # drains: a line sent twice or late is in the files now
        assert set(seqs(back)) | set(seqs(bad)) == set(range(total))
        assert seqs(good) == list(range(total))  # checkpoint was at the end: nothing read twice
    finally:
        writer.stop()
        watcher.stop()
