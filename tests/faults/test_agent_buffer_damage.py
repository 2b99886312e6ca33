"""A damaged agent disk buffer costs only the damaged entries, which are set aside; everything else
is delivered. And a disk buffer on a full disk keeps nothing half-written and loses nothing.

Fault 1: a real agent tails a log file into a disk buffer while the server is down, so every line
is acknowledged (fsync'd in the buffer: the file's checkpoint moved past it) and sits only in the
buffer. The agent is killed with ``kill -9``, one bit is flipped in the middle of the oldest
buffer segment and one in the middle of the newest, and agent and server start again. What must
hold, read back through the real query API: every line outside the two damaged entries is
stored, once; the lines of the damaged entries are exactly those whose bytes are in the agent's
``quarantine/``; its ``/metrics`` and JSON log say so; and it goes on delivering new lines.

Fault 2: the buffer's filesystem (a real tmpfs) is full while items are put: a put that cannot be
written is not taken (``drop_newest``) or waits (``block``) and leaves no byte behind; once space
is back, every item taken is read back, and a restart finds no damage.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import orjson
from tests.agent.buffer_damage import item, quarantined, read_all
from tests.agent.conftest import AgentProcess, free_port, wait_for, write_config
from tests.conftest import ServerProcess
from tests.faults.conftest import Tally, fill_to

from logharbor.agent.buffer import DiskBuffer
from logharbor.agent.buffer.segments import list_segments, scan_segment

SERVICE = "bufdamage"
LINES = 4000
PAD = "p" * 160


def write_lines(path: Path, first: int, count: int) -> set[str]:
    with path.open("a") as fh:
        for i in range(first, first + count):
            fh.write(orjson.dumps({"seq": i, "service": SERVICE, "msg": f"line {i:06d} {PAD}"}).decode() + "\n")
    return {str(i) for i in range(first, first + count)}


def flip_in_middle(segment: Path) -> tuple[set[str], bytes]:
    """Flip one bit in the middle of a buffer segment; the seqs of the entry it lands in, and the
    entry's bytes after the flip (what the quarantine must hold)."""
    (seg,) = [s for s in list_segments(segment.parent) if s.path == segment]
    result, data = scan_segment(seg)
    assert not result.bad, result.bad
    buf = bytearray(data)
    middle = len(buf) // 2
    buf[middle] ^= 0x10
    segment.write_bytes(bytes(buf))
    (hit,) = [e for e in result.entries if e.start <= middle < e.end]
    seqs = {str(orjson.loads(line)["seq"]) for line in data[hit.payload_start:hit.end].splitlines() if line}
    return seqs, bytes(buf[hit.start:hit.end])


def stored_seqs(server: ServerProcess, total: int) -> list[str]:
    out: list[str] = []
    step = 5000
    with server.client(timeout=120) as client:
        for lo in range(0, total, step):
            r = client.post("/api/v1/query", json={"q": f"service:{SERVICE} AND seq:[{lo} TO {lo + step - 1}]"
                                                   " | fields seq", "limit": 4 * step, "since": "now-1d"})
            r.raise_for_status()
            out.extend(str(row["seq"]) for row in r.json()["rows"])
    return out


def agent_metric(port: int, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    found = [line.split()[-1] for line in text.splitlines() if line.startswith(name + '{sink="srv"}')]
    return float(found[0]) if found else 0.0


def test_bit_flips_in_the_agent_buffer_cost_only_the_damaged_entries(tmp_path: Path, server_factory: Any) -> None:
    tally = Tally("agent-buffer-damage/bit-flips")
    srv: ServerProcess = server_factory("--batch-max-age", "0.2")
    key = srv.create_key("writer")
    srv.kill9()  # the server is down: what the agent reads stays in its disk buffer
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    tally.ack(write_lines(app, 0, LINES))
    data_dir = tmp_path / "agent-data"
    port = free_port()
    cfg = write_config(tmp_path / "agent.yaml", {
        "data_dir": str(data_dir), "metrics": {"port": port}, "shutdown_timeout_secs": 5,
        "sources": {"app": {"type": "file", "include": [str(app)], "parser": "json",
                            "checkpoint_interval_secs": 0.2, "poll_interval_secs": 0.05}},
        # 1 MiB segments: the lines fill a few of them
        "sinks": {"srv": {"type": "logharbor", "url": srv.url, "api_key": key,
                          "batch": {"timeout_secs": 0.2}, "retry_initial_secs": 0.1, "retry_max_secs": 0.5,
                          "buffer": {"type": "disk", "max_bytes": 4 * 1024 * 1024}}}})
    log = tmp_path / "agent.log"
    agent = AgentProcess(cfg, log).start()
    checkpoint = data_dir / "checkpoints" / "app.json"

    def buffered() -> bool:  # the checkpoint passed every line: each is durable in the buffer
        try:
            doc = orjson.loads(checkpoint.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return False
        return any(e["offset"] == app.stat().st_size for e in doc["files"])

    try:
        assert wait_for(buffered, 60), agent.log()[-3000:]
        agent.kill9()
        buffer_dir = data_dir / "buffer" / "srv"
        segments = [s.path for s in list_segments(buffer_dir)]
        assert len(segments) >= 2, segments
        (old_seqs, old_bytes), (new_seqs, new_bytes) = flip_in_middle(segments[0]), flip_in_middle(segments[-1])
        damaged = old_seqs | new_seqs
        assert damaged and not old_seqs & new_seqs

        srv.start()
        agent = AgentProcess(cfg, log).start()
        assert wait_for(lambda: srv.store_rows() >= LINES - len(damaged), 120, 0.5), agent.log()[-3000:]
        # it goes on: new lines are delivered too
        tally.ack(write_lines(app, LINES, 300))
        assert wait_for(lambda: srv.store_rows() >= LINES + 300 - len(damaged), 60, 0.5), agent.log()[-3000:]
        tally.saw(stored_seqs(srv, LINES + 300))

        assert tally.lost == damaged, (len(tally.lost), len(damaged))  # exactly the damaged entries
        kept = quarantined(buffer_dir)
        copies = sorted(p.read_bytes() for p in (buffer_dir / "quarantine").glob("*.bad"))
        assert copies == sorted([old_bytes, new_bytes])  # their bytes, as they were on disk
        assert sorted(k["segment"] for k in kept) == sorted([segments[0].name, segments[-1].name])
        assert agent_metric(port, "logharbor_agent_buffer_corrupt_entries_total") == 2
        assert agent_metric(port, "logharbor_agent_buffer_quarantine_files") == 2
        lines = [orjson.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
        found = [x for x in lines if x["message"].startswith("disk buffer damage skipped")]
        assert len(found) == 2 and all(x["offset"] > 0 and x["bytes"] > 0 for x in found), found
        print("\n" + "\n".join(orjson.dumps(x).decode() for x in found))
        assert agent.stop() == 0
    finally:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.proc.kill()
    tally.extra.update(acknowledged_total=len(tally.acknowledged), damaged_entries=2,
                       quarantined_records=len(damaged))
    tally.acknowledged -= damaged  # the promise: every line outside a damaged entry is delivered
    tally.report()


def test_a_full_disk_leaves_no_half_entry_and_loses_nothing_taken(small_fs: Path) -> None:
    tally = Tally("agent-buffer/full-disk")
    directory = small_fs / "buffer"
    buf = DiskBuffer(directory, 1 << 30, "drop_newest")
    ballast = fill_to(small_fs, 256 * 1024)
    taken: set[str] = set()
    refused = 0
    for i in range(2000):  # 2000 entries of ~1.6 KiB: more than the space left
        if buf.put(item(i, 800)):
            taken.add(str(i))
        else:
            refused += 1
    assert refused and taken
    ballast.unlink()
    assert buf.put(item(5000, 800))  # space is back: taken again
    taken.add("5000")
    tally.ack(taken)
    buf.close()
    again = DiskBuffer(directory, 1 << 30, "block")
    assert not quarantined(directory)  # nothing half-written was left to look like damage
    tally.saw(str(i) for i in read_all(again))
    again.close()

    # when_full: block waits for space instead of refusing, and then takes the item
    blocking = DiskBuffer(small_fs / "blocking", 1 << 30, "block")
    ballast = fill_to(small_fs, 4096)
    done = threading.Event()

    def put() -> None:
        for i in range(6000, 6040):
            blocking.put(item(i, 800))
        done.set()

    threading.Thread(target=put, daemon=True).start()
    assert not done.wait(1.5)  # waiting for space (it says so in the log, once a second)
    ballast.unlink()
    assert done.wait(30)
    tally.ack(str(i) for i in range(6000, 6040))
    tally.saw(str(i) for i in read_all(blocking))
    blocking.close()
    tally.extra.update(taken_while_filling=len(taken) - 1, refused_while_full=refused, waited_for_space=40)
    tally.report()
