"""A log file rotated under load — by rename and by copytruncate — while the server is killed
(``kill -9``, down for seconds: the agent's buffer fills and its reader stops, paused by
backpressure) and while the agent itself is killed (``kill -9``), in a loop.

Fault: a reader paused by backpressure used to miss rotations that happened while it waited (a
copytruncate's copy it never looked for, a renamed file it never opened): lines lost for good.
Here a writer appends numbered lines at a steady rate and rotates the file the way logrotate
does (numbered siblings shifted up: ``app.log.1`` → ``app.log.2``), alternating rename + create
and copytruncate, every ~0.7 s; a fault loop driven by a seed kills the server, the agent, or
both, at random moments. At the end every line written (*acknowledged*: the application wrote
it to its log) must be stored (read back through the real query API). Duplicates are allowed —
the promise is at-least-once: a restarted agent reads again what it had not seen acknowledged —
and counted.

Bounded: ~30 s of writing with four to seven faults by default; ``LOGHARBOR_FULL_TESTS=1`` runs
three rounds of ~90 s. ``LOGHARBOR_FAULT_SEED=n`` replays one schedule (the seed is printed).
"""

from __future__ import annotations

import collections
import os
import random
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from tests.agent.conftest import FULL, AgentProcess, wait_for, write_config
from tests.conftest import ServerProcess
from tests.faults.conftest import Tally, fault_seed

SECONDS = 90.0 if FULL else 30.0
RATE = 2500  # lines per second
ROTATE_EVERY = 0.7  # seconds


class Writer(threading.Thread):
    """Numbered JSON lines at a steady rate, rotated like logrotate does, alternating kinds."""

    def __init__(self, directory: Path, seconds: float, rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.path = directory / "app.log"
        self.seconds = seconds
        self.rng = rng
        self.written = 0
        self.rotations: list[tuple[float, str, int]] = []  # (monotonic time, kind, first seq after)
        self.done = threading.Event()

    def _shift(self) -> None:
        numbered = sorted((p for p in self.path.parent.glob("app.log.*") if p.suffix[1:].isdigit()),
                          key=lambda p: -int(p.suffix[1:]))
        for p in numbered:
            os.rename(p, self.path.parent / f"app.log.{int(p.suffix[1:]) + 1}")

    def _rotate(self, fh: Any) -> Any:
        fh.flush()
        kind = "rename" if len(self.rotations) % 2 == 0 else "copytruncate"
        self._shift()
        if kind == "rename":
            fh.close()
            os.rename(self.path, f"{self.path}.1")
            fh = open(self.path, "a")
        else:
            shutil.copyfile(self.path, f"{self.path}.1")
            os.truncate(self.path, 0)
        self.rotations.append((time.monotonic(), kind, self.written))
        return fh

    def run(self) -> None:
        fh = open(self.path, "a")
        start = time.monotonic()
        next_rotation = start + ROTATE_EVERY
        pad = "p" * 70
        seq = 0
        while time.monotonic() - start < self.seconds:
            due = int((time.monotonic() - start) * RATE)
            while seq < due:
                fh.write(f'{{"seq":{seq},"level":"info","msg":"line {seq:08d} {pad}"}}\n')
                seq += 1
            fh.flush()
            self.written = seq
            if time.monotonic() >= next_rotation:
                self.written = seq
                fh = self._rotate(fh)
                next_rotation = time.monotonic() + ROTATE_EVERY * self.rng.uniform(0.6, 1.4)
            time.sleep(0.01)
        fh.close()
        self.done.set()


def explain(lost: list[int], writer: Writer, down: list[tuple[float, float]], seed: int, log: Path) -> None:
    """Print which contents (between which rotations) the lost lines belonged to."""
    runs: list[list[int]] = []
    for s in lost:
        if runs and s == runs[-1][1] + 1:
            runs[-1][1] = s
        else:
            runs.append([s, s])
    starts = [(0, "start", 0.0)] + [(first, kind, at) for at, kind, first in writer.rotations]
    print(f"seed {seed}: {len(lost)} lines lost in {len(runs)} runs")
    for lo, hi in runs[:20]:
        gen = max(i for i, (first, _, _) in enumerate(starts) if first <= lo)
        first, kind, at = starts[gen]
        end = starts[gen + 1] if gen + 1 < len(starts) else None
        paused = any(a <= at <= b for a, b in down)
        print(f"  lost {lo}..{hi} ({hi - lo + 1}) in content {gen} (seq {first}.., began by {kind}"
              f"{' while the server was down' if paused else ''}; ended by {end[1] if end else '-'})")
    print("agent log tail:\n" + log.read_text()[-3000:])


def stored_seqs(server: ServerProcess, total: int) -> list[int]:
    """Every ``seq`` the server stores, duplicates included, through the query API."""
    out: list[int] = []
    step = 5000
    with server.client(timeout=120) as client:
        for lo in range(0, total, step):
            r = client.post("/api/v1/query", json={"q": f"seq:[{lo} TO {lo + step - 1}] | fields seq",
                                                   "limit": 4 * step, "since": "now-1d"})
            r.raise_for_status()
            out.extend(int(row["seq"]) for row in r.json()["rows"])
    return out


def distinct_stored(server: ServerProcess) -> int:
    with server.client(timeout=60) as client:
        r = client.post("/api/v1/query", json={"q": "_exists_:seq | stats count_uniq(seq) as n",
                                               "since": "now-1d"})
        r.raise_for_status()
        rows = r.json()["rows"]
    return int(rows[0]["n"]) if rows else 0


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(3 if FULL else 1))
def test_rotations_while_paused_with_agent_and_server_kill9_lose_nothing(
        tmp_path: Path, server_factory: Any, round_: int) -> None:
    seed, rng = fault_seed()
    logs = tmp_path / "logs"
    logs.mkdir()
    srv: ServerProcess = server_factory("--batch-max-age", "0.2")
    cfg = write_config(tmp_path / "agent.yaml", {
        "data_dir": str(tmp_path / "agent-data"), "metrics": {"port": 0}, "shutdown_timeout_secs": 5,
        "sources": {"app": {"type": "file", "include": [str(logs / "app.log")], "parser": "json",
                            "glob_interval_secs": 0.2, "checkpoint_interval_secs": 0.2,
                            "rotated_idle_secs": 1.0, "poll_interval_secs": 0.05}},
        # a small buffer: while the server is down the reader is paused within a fraction of a second
        "sinks": {"srv": {"type": "logharbor", "url": srv.url, "api_key": srv.create_key("writer"),
                          "batch": {"timeout_secs": 0.2}, "retry_initial_secs": 0.1, "retry_max_secs": 0.5,
                          "buffer": {"max_bytes": 256 * 1024}}}})
    log = tmp_path / "agent.log"
    (logs / "app.log").touch()
    agent = AgentProcess(cfg, log).start()
    # the promise starts when the agent has seen the file (lines rotated away before it ever ran
    # are not in any file it watches)
    assert wait_for(lambda: '"file opened"' in log.read_text(), 60), log.read_text()[-2000:]
    writer = Writer(logs, SECONDS, rng)
    writer.start()
    down: list[tuple[float, float]] = []  # when the server was down (reading paused)
    faults: collections.Counter[str] = collections.Counter()
    try:
        first = True
        while not writer.done.is_set():
            time.sleep(rng.uniform(1.0, 2.5))
            if writer.done.is_set():
                break
            fault = "server" if first else rng.choice(["server", "agent", "both"])
            first = False
            faults[fault] += 1
            if fault in ("server", "both"):
                srv.kill9()
                went = time.monotonic()
                time.sleep(rng.uniform(0.5, 1.5))
                if fault == "both":
                    agent.kill9()  # killed while paused, with rotations going on
                    time.sleep(rng.uniform(0.3, 1.0))
                    agent = AgentProcess(cfg, log).start()
                time.sleep(rng.uniform(1.0, 2.5))
                srv.start()
                down.append((went, time.monotonic()))
            else:
                agent.kill9()
                time.sleep(rng.uniform(0.2, 1.2))
                agent = AgentProcess(cfg, log).start()
        writer.join(30)
        total = writer.written
        wait_for(lambda: distinct_stored(srv) >= total, 180, 1.0)
        assert agent.stop() == 0
    finally:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.proc.kill()
    tally = Tally(f"file rotations under load, server and agent kill -9 (round {round_})")
    tally.ack(str(s) for s in range(total))
    tally.saw(str(s) for s in stored_seqs(srv, total))
    paused_rotations = collections.Counter(kind for at, kind, _ in writer.rotations
                                           if any(a <= at <= b for a, b in down))
    if tally.lost:
        explain(sorted(int(x) for x in tally.lost), writer, down, seed, log)
    tally.extra.update(seed=seed, lines=total, rotations=len(writer.rotations),
                       rotations_while_server_down=dict(paused_rotations), faults=dict(faults))
    tally.report(allow_duplicates=True)
    assert paused_rotations["rename"] and paused_rotations["copytruncate"], paused_rotations
