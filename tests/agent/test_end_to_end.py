"""End to end with real processes: a writer rotating files under load, the agent killed with
``kill -9`` and restarted, and the real ``logharbor server`` going down and coming back.

Sizes scale with ``LOGHARBOR_FULL_TESTS=1`` (500k lines, 30 s down) — the default runs the same
code and assertions on 60k lines and 8 s down, so the suite stays short on two cores.
"""

from __future__ import annotations

import collections
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.agent.conftest import FULL, wait_for

from logharbor.record import parse_timestamp

LINES = 500_000 if FULL else 60_000
DOWN_SECS = 30.0 if FULL else 8.0
#: how long the agent stays dead after each kill -9 (rotations keep happening meanwhile)
AGENT_DOWN_SECS = float(os.environ.get("LOGHARBOR_AGENT_DOWN_SECS", "2.0"))


class Writer(threading.Thread):
    """Appends numbered JSON lines at a steady pace, rotating the file by rename+create and by
    copytruncate in turn, as logrotate would."""

    def __init__(self, directory: Path, total: int, rotations: int, seconds: float) -> None:
        super().__init__(daemon=True)
        self.path = directory / "app.log"
        self.total, self.rotations, self.seconds = total, rotations, seconds
        self.written = 0
        self.kinds: list[str] = []

    def run(self) -> None:
        fh = open(self.path, "a")
        every = self.total // (self.rotations + 1)
        start = time.monotonic()
        pad = "x" * 60
        for seq in range(self.total):
            fh.write(f'{{"seq":{seq},"level":"info","msg":"line {seq:07d} {pad}"}}\n')
            self.written = seq + 1
            if seq and seq % every == 0 and len(self.kinds) < self.rotations:
                fh.flush()
                n = len(self.kinds) + 1
                if n % 2:
                    fh.close()
                    os.rename(self.path, f"{self.path}.{n}")
                    fh = open(self.path, "a")
                    self.kinds.append("rename")
                else:
                    shutil.copyfile(self.path, f"{self.path}.{n}")
                    os.truncate(self.path, 0)
                    self.kinds.append("copytruncate")
            if seq % 500 == 0:
                fh.flush()
                ahead = (seq / self.total) * self.seconds - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)
        fh.close()


def agent_config(tmp: Path, url: str, **sink: Any) -> dict[str, Any]:
    return {
        "data_dir": str(tmp / "agent-data"),
        "metrics": {"port": 0},
        "shutdown_timeout_secs": 5,
        "sources": {"app": {
            "type": "file", "include": [str(tmp / "logs" / "app.log")], "parser": "json",
            "rotated_idle_secs": 1.0, "checkpoint_interval_secs": 0.2, "glob_interval_secs": 0.2,
            "poll_interval_secs": 0.05}},
        "sinks": {"srv": {"type": "logharbor", "url": url, "batch": {"timeout_secs": 0.2},
                          "retry_max_secs": 1.0, **sink}},
    }


def server_rows(server: Any, total: int) -> list[tuple[int, int]]:
    """(seq, server receive time in ns) of every record a real server stored, duplicates included."""
    out: list[tuple[int, int]] = []
    step = 4000
    with server.client(timeout=60) as client:
        for lo in range(0, total, step):
            r = client.post("/api/v1/query", json={
                "q": f"seq:[{lo} TO {lo + step - 1}] | fields seq, observed_timestamp",
                "limit": 10_000, "since": "now-1d"})
            r.raise_for_status()
            for row in r.json()["rows"]:
                out.append((int(row["seq"]), parse_timestamp(row["observed_timestamp"])))
    return out


def server_seqs(server: Any, total: int) -> list[int]:
    """Every ``seq`` stored by a real server, duplicates included."""
    return [seq for seq, _ in server_rows(server, total)]


def accepted_total(server: Any) -> int:
    """Records the server acknowledged (after its WAL fsync), from its /metrics."""
    with server.client() as client:
        text = client.get("/metrics").text
    return int(sum(float(x.split()[-1]) for x in text.splitlines()
                   if x.startswith("logharbor_records_accepted_total")))


def check(seqs: list[int], total: int, allowed_dups: set[int] | None = None, where: str = "") -> int:
    counts = collections.Counter(seqs)
    missing = [s for s in range(total) if counts[s] == 0]
    assert not missing, f"{len(missing)} lines lost, first {missing[:10]}; {where}"
    dups = {s for s, c in counts.items() if c > 1}
    if allowed_dups is not None:
        extra = sorted(dups - allowed_dups)
        assert not extra, f"duplicates of lines not sent before a kill: {extra[:10]}"
    n = sum(c - 1 for c in counts.values())
    ranges: list[list[int]] = []
    for d in sorted(dups):
        if ranges and d == ranges[-1][1] + 1:
            ranges[-1][1] = d
        else:
            ranges.append([d, d])
    print(f"\n{total} lines, {n} duplicates, in ranges {ranges[:8]}")
    return n


@pytest.mark.slow
@pytest.mark.parametrize("target", ["receiver", "server"])
def test_rotation_under_load_with_two_kill9_loses_nothing(
        tmp_path: Path, target: str, receiver_factory: Any, server_factory: Any, agent_factory: Any) -> None:
    (tmp_path / "logs").mkdir()
    if target == "server":
        srv = server_factory("--batch-max-age", "0.2")
        url = srv.url
        delivered = srv.store_rows
        sink_options = {"api_key": srv.create_key("writer")}
    else:
        rec = receiver_factory()
        url = rec.url
        delivered = lambda: rec.stats()["lines"]  # noqa: E731
        sink_options = {}
    cfg = agent_config(tmp_path, url, **sink_options)
    writer = Writer(tmp_path / "logs", LINES, rotations=6, seconds=40.0 if FULL else 12.0)
    agent = agent_factory(cfg)
    writer.start()
    sent_before_kill: set[int] = set()
    kills: list[int] = []
    for fraction in (1 / 3, 2 / 3):
        assert wait_for(lambda f=fraction: writer.written >= LINES * f, 120)
        agent.kill9()
        kills.append(time.time_ns())  # the server cannot receive from this agent after this
        if target == "receiver":
            sent_before_kill |= {r["seq"] for r in rec.records()}
        time.sleep(AGENT_DOWN_SECS)
        agent = agent_factory(cfg, name=f"agent-{fraction:.2f}")
    writer.join(120)
    assert writer.kinds.count("rename") == 3 and writer.kinds.count("copytruncate") == 3
    assert wait_for(lambda: delivered() >= LINES, 120, 0.5), (delivered(), agent.log()[-3000:])
    time.sleep(1.5)  # anything still on its way arrives too
    assert agent.stop() == 0
    if target == "receiver":
        check([r["seq"] for r in rec.records()], LINES, sent_before_kill)
    else:
        rows = server_rows(srv, LINES)
        # a line may be stored twice only if one copy reached the server before a kill and the
        # other after it (re-read from the last checkpoint by the restarted agent)
        seen: dict[int, list[int]] = collections.defaultdict(list)
        for seq, at in rows:
            seen[seq].append(at)
        allowed = {seq for seq, times in seen.items()
                   if len(times) > 1 and any(min(times) <= k < max(times) for k in kills)}
        where = (f"server acknowledged {accepted_total(srv)} records, stores {srv.store_rows()}, "
                 f"query returned {len(rows)}")
        check([seq for seq, _ in rows], LINES, allowed, where)


@pytest.mark.slow
def test_server_down_lines_are_buffered_on_disk_and_delivered_after_a_kill9(
        tmp_path: Path, server_factory: Any, agent_factory: Any) -> None:
    (tmp_path / "logs").mkdir()
    srv = server_factory("--batch-max-age", "0.2")
    total = 20_000
    cfg = agent_config(tmp_path, srv.url, api_key=srv.create_key("writer"),
                       buffer={"type": "disk", "max_bytes": 256 * 1024 * 1024})
    agent = agent_factory(cfg)
    writer = Writer(tmp_path / "logs", total, rotations=2, seconds=DOWN_SECS + 4)
    writer.start()
    assert wait_for(lambda: srv.store_rows() > 0, 60)
    srv.kill9()
    down_at = time.monotonic()
    ckpt = tmp_path / "agent-data" / "checkpoints" / "app.json"
    buffered = tmp_path / "agent-data" / "buffer" / "srv"

    def caught_up() -> bool:  # the source moved on: its lines are durable in the disk buffer
        doc = orjson.loads(ckpt.read_bytes())
        live = os.stat(tmp_path / "logs" / "app.log")
        return any(e["ino"] == live.st_ino and e["offset"] == live.st_size for e in doc["files"])

    writer.join(120)
    assert wait_for(caught_up, 30)
    assert sum(p.stat().st_size for p in buffered.glob("*.lhb")) > 0
    agent.kill9()  # the buffered lines exist only in the disk buffer now: a restart must replay them
    agent = agent_factory(cfg, name="agent-restarted")
    time.sleep(max(0.0, DOWN_SECS - (time.monotonic() - down_at)))
    srv.start()
    assert wait_for(lambda: srv.store_rows() >= total, 120, 0.5), agent.log()[-3000:]
    assert agent.stop() == 0
    check(server_seqs(srv, total), total)


@pytest.mark.slow
@pytest.mark.e2e
def test_memory_stays_bounded_when_the_receiver_is_down(tmp_path: Path, receiver_factory: Any,
                                                       agent_factory: Any) -> None:
    (tmp_path / "logs").mkdir()
    big = tmp_path / "logs" / "app.log"
    line = '{"seq":%d,"msg":"' + "y" * 200 + '"}\n'
    with open(big, "w") as fh:
        for start in range(0, 600_000, 10_000):  # ~130 MB, far more than any buffer
            fh.write("".join(line % i for i in range(start, start + 10_000)))
    r = receiver_factory()
    r.kill()  # nobody answers
    cfg = agent_config(tmp_path, r.url)
    cfg["sources"]["app"]["include"] = [str(big)]
    cfg["sources"]["app"].pop("parser")
    agent = agent_factory(cfg)
    assert agent.proc is not None
    status = Path(f"/proc/{agent.proc.pid}/status")
    time.sleep(4.0)  # long enough to read everything, if nothing held it back
    peak_kib = next(int(x.split()[1]) for x in status.read_text().splitlines() if x.startswith("VmHWM:"))
    assert agent.stop() == 0
    doc = orjson.loads((tmp_path / "agent-data" / "checkpoints" / "app.json").read_bytes())
    assert doc["files"][0]["offset"] == 0  # nothing delivered, nothing checkpointed
    assert peak_kib < 100 * 1024, f"peak RSS {peak_kib} KiB"
    print(f"\npeak RSS with the receiver down: {peak_kib / 1024:.1f} MiB for a {big.stat().st_size >> 20} MiB file")
