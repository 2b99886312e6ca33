"""Long lines written in pieces, through rename rotations, while the agent is killed (``kill -9``)
at random moments: every line comes out whole — or, over ``max_line_bytes``, cut and marked
``truncated`` with its ``original_bytes`` — and never as pieces.

Fault: the file source used to ship a line longer than a read block as several records (a 40 KiB
JSON line became pieces the JSON parser took for garbage: the record's fields lost). Here a writer
appends numbered JSON lines — most short, some longer than the read block, a few over the limit —
each long one in two or three writes with pauses between (the reader sees half a line), renames
the file every ~1.5 s, and a fault loop driven by a seed kills the agent and starts it again. A
real agent ships to a real server; what the query API returns is counted: *acknowledged* = every
line written, *stored* = whole lines (their ``seq`` field) plus cut lines (the ``seq`` at the
start of their message), *lost* must be 0, *duplicated* is allowed (at-least-once) and counted,
and no record may be a piece of a line (a ``parse_error`` on a record not marked ``truncated``).

Bounded: ~20 s of writing; ``LOGHARBOR_FULL_TESTS=1`` writes for 60 s.
``LOGHARBOR_FAULT_SEED=n`` replays one schedule (the seed is printed).
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.agent.conftest import FULL, AgentProcess, wait_for, write_config
from tests.conftest import ServerProcess
from tests.faults.conftest import Tally, fault_seed

SECONDS = 60.0 if FULL else 20.0
BLOCK = 8 * 1024
LIMIT = 64 * 1024


class Writer(threading.Thread):
    """Numbered JSON lines of mixed sizes, the long ones written in pieces, rotated by rename."""

    def __init__(self, directory: Path, seconds: float, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.path = directory / "app.log"
        self.seconds = seconds
        self.rng = rng
        self.sizes: list[int] = []  # seq → bytes of its line (without the newline)
        self.done = threading.Event()

    def line(self, seq: int) -> bytes:
        roll = self.rng.random()
        size = (self.rng.randrange(70_000, 200_000) if roll < 0.03
                else self.rng.randrange(BLOCK + 1, LIMIT - 100) if roll < 0.15 else 120)
        head = orjson.dumps({"seq": seq, "size": size, "pad": ""})[:-2]  # ... "pad":"
        tail = orjson.dumps({"end": seq}).replace(b"{", b",", 1)
        data = head + b"x" * (size - len(head) - 1 - len(tail)) + b'"' + tail
        assert len(data) == size
        return data

    def run(self) -> None:
        fh = open(self.path, "ab")
        start = time.monotonic()
        next_rotation = start + 1.5
        seq = 0
        while time.monotonic() - start < self.seconds:
            data = self.line(seq) + b"\n"
            if len(data) > BLOCK:  # in pieces: the reader sees the line without its end
                cuts = sorted(self.rng.sample(range(1, len(data)), self.rng.randint(1, 2)))
                for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True):
                    fh.write(data[a:b])
                    fh.flush()
                    time.sleep(self.rng.uniform(0.0, 0.08))
            else:
                fh.write(data)
            self.sizes.append(len(data) - 1)
            seq += 1
            if seq % 20 == 0:
                fh.flush()
                time.sleep(0.01)
            if time.monotonic() >= next_rotation:  # rename + create, between two lines
                fh.close()
                os.rename(self.path, f"{self.path}.{seq}")
                fh = open(self.path, "ab")
                next_rotation = time.monotonic() + 1.5 * self.rng.uniform(0.6, 1.4)
        fh.close()
        self.done.set()


def stored(server: ServerProcess) -> tuple[list[int], list[tuple[int, int, int]], int]:
    """(seq of every whole line stored, (seq, original_bytes, kept bytes) of every cut one, how
    many records are pieces: not JSON and not marked cut)."""
    with server.client(timeout=120) as client:
        def rows(q: str, limit: int = 200_000) -> list[dict[str, Any]]:
            r = client.post("/api/v1/query", json={"q": q, "limit": limit, "since": "now-1d"})
            r.raise_for_status()
            return r.json()["rows"]  # type: ignore[no-any-return]

        whole = rows("_exists_:end | fields seq, size, end")
        assert all(int(x["seq"]) == int(x["end"]) for x in whole)
        cut = rows("truncated:true | fields message, original_bytes", limit=10_000)
        pieces = rows("_exists_:parse_error AND NOT _exists_:truncated | stats count() as n")
    cut_seqs = []
    for x in cut:
        m = re.match(r'\{"seq":(\d+),', x["message"])
        assert m is not None, x["message"][:100]
        cut_seqs.append((int(m[1]), int(x["original_bytes"]), len(x["message"].encode())))
    return [int(x["seq"]) for x in whole], cut_seqs, int(pieces[0]["n"]) if pieces else 0


@pytest.mark.slow
def test_long_lines_in_pieces_through_rotations_and_agent_kill9_come_out_whole(
        tmp_path: Path, server_factory: Any) -> None:
    seed, rng = fault_seed()
    logs = tmp_path / "logs"
    logs.mkdir()
    srv: ServerProcess = server_factory("--batch-max-age", "0.2")
    cfg = write_config(tmp_path / "agent.yaml", {
        "data_dir": str(tmp_path / "agent-data"), "metrics": {"port": 0}, "shutdown_timeout_secs": 5,
        "sources": {"app": {"type": "file", "include": [str(logs / "app.log")], "parser": "json",
                            "read_block_bytes": BLOCK, "max_line_bytes": LIMIT,
                            "glob_interval_secs": 0.2, "checkpoint_interval_secs": 0.2,
                            "rotated_idle_secs": 1.0, "poll_interval_secs": 0.05}},
        "sinks": {"srv": {"type": "logharbor", "url": srv.url, "api_key": srv.create_key("writer"),
                          "batch": {"timeout_secs": 0.2}, "retry_initial_secs": 0.1,
                          "retry_max_secs": 0.5}}})
    log = tmp_path / "agent.log"
    (logs / "app.log").touch()
    agent = AgentProcess(cfg, log).start()
    assert wait_for(lambda: '"file opened"' in log.read_text(), 60), log.read_text()[-2000:]
    writer = Writer(logs, SECONDS, rng)
    writer.start()
    kills = 0
    try:
        while not writer.done.is_set():
            time.sleep(rng.uniform(1.0, 2.5))
            if writer.done.is_set():
                break
            agent.kill9()
            kills += 1
            time.sleep(rng.uniform(0.2, 1.0))
            agent = AgentProcess(cfg, log).start()
        writer.join(30)
        total = len(writer.sizes)

        def seen() -> int:
            whole, cut, _ = stored(srv)
            return len(set(whole) | {s for s, _, _ in cut})

        wait_for(lambda: seen() >= total, 180, 1.0)
        assert agent.stop() == 0
    finally:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.proc.kill()
    whole, cut, pieces = stored(srv)
    over = {s for s, size in enumerate(writer.sizes) if size > LIMIT}
    tally = Tally("long lines in pieces, rename rotations, agent kill -9")
    tally.ack(str(s) for s in range(total))
    tally.saw(str(s) for s in whole)
    tally.saw(str(s) for s, _, _ in cut)
    tally.extra.update(kills=kills, seed=seed, over_limit=len(over), pieces=pieces,
                       long=sum(1 for s in writer.sizes if BLOCK < s <= LIMIT))
    tally.report(allow_duplicates=True)
    assert pieces == 0, "a line was shipped as pieces"
    assert {s for s, _, _ in cut} == over and not over & set(whole)
    assert all(orig == writer.sizes[s] and kept == LIMIT for s, orig, kept in cut)
    assert kills >= 3 and over and tally.extra["long"]
