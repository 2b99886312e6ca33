"""The agent's state is its user's alone: ``data_dir`` 0700, every file in it 0600 (docs/security.md).

A real agent process started under umask 022 on a state directory an older release left 0755 and
0644: at start it tightens what was there (and says so in its log), and everything it creates —
checkpoints and their copies, the disk buffer's segments, ``ack.json``, ``id``, the instance id,
the quarantine, a file sink's output and a dead-letter file — is private.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import orjson
from tests.agent.buffer_damage import build, flip, spans
from tests.agent.conftest import free_port, wait_for

from logharbor.agent import statedir
from logharbor.agent.buffer.segments import list_segments


def modes(root: Path) -> dict[str, int]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = stat.S_IMODE(os.lstat(p).st_mode)
    out["."] = stat.S_IMODE(os.stat(root).st_mode)
    return out


def test_the_agent_keeps_its_state_private_under_umask_022(tmp_path: Path, agent_factory: Any) -> None:
    data = tmp_path / "agent-data"
    (data / "checkpoints").mkdir(parents=True)
    (data / "checkpoints" / "old.json").write_text("{}")
    (data / "buffer" / "down").mkdir(parents=True)
    (data / "buffer" / "down" / "id").write_text("abc123\n")
    for p in (data, data / "checkpoints", data / "buffer", data / "buffer" / "down"):
        p.chmod(0o755)
    for p in (data / "checkpoints" / "old.json", data / "buffer" / "down" / "id"):
        p.chmod(0o644)
    # a damaged entry in the buffer, so the quarantine is written too
    seed = tmp_path / "seed"
    build(seed, 3)
    (seg,) = [s.path for s in list_segments(seed)]
    flip(seg, spans(seg)[1][1] + 40)
    os.replace(seg, data / "buffer" / "down" / seg.name)
    (data / "buffer" / "down" / seg.name).chmod(0o644)

    log_file = tmp_path / "app.log"
    log_file.write_text("".join(f'{{"n":{i}}}\n' for i in range(50)))
    out = tmp_path / "out" / "copy.ndjson"
    old = os.umask(0o022)
    try:
        agent = agent_factory({
            "data_dir": str(data), "metrics": {"port": 0},
            "sources": {"app": {"type": "file", "include": [str(log_file)], "parser": "json",
                                "checkpoint_interval_secs": 0.1}},
            "sinks": {
                "copy": {"type": "file", "path": str(out), "dead_letter_path": str(tmp_path / "dead.ndjson"),
                         "batch": {"timeout_secs": 0.1}},
                # nothing listens there: what it gets stays in its disk buffer
                "down": {"type": "logharbor", "url": f"http://127.0.0.1:{free_port()}", "api_key": "k",
                         "retry_initial_secs": 0.1, "buffer": {"type": "disk"}}}})
    finally:
        os.umask(old)
    assert wait_for(lambda: out.exists() and len(out.read_bytes().splitlines()) == 50, 30), agent.log()[-2000:]
    assert wait_for(lambda: (data / "buffer" / "down" / "quarantine").is_dir(), 30), agent.log()[-2000:]
    assert wait_for(lambda: (data / "checkpoints" / "app.json.prev").exists(), 30), agent.log()[-2000:]
    assert agent.stop() == 0
    found = modes(data)
    assert {"instance_id", "checkpoints/app.json", "checkpoints/app.json.prev", "buffer/down/ack.json",
            "buffer/down/id", "buffer/down/quarantine"} <= set(found)
    assert any(k.endswith(".lhb") for k in found) and any(k.endswith(".bad") for k in found)
    wide = {k: oct(m) for k, m in found.items()
            if m != (0o700 if (data / k).is_dir() else 0o600)}
    assert not wide, wide
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE(out.parent.stat().st_mode) == 0o700
    lines = [orjson.loads(x) for x in agent.log().splitlines() if x.startswith("{")]
    (told,) = [x for x in lines if x["message"].startswith("made state files private")]
    assert told["changed"] == 7 and told["root"] == str(data)  # 4 directories, 3 files


def test_a_shared_data_dir_is_left_alone_but_the_agents_files_are_not(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp
    (shared / "someone-elses.txt").write_text("x")
    (shared / "someone-elses.txt").chmod(0o644)
    (shared / "checkpoints").mkdir()
    (shared / "checkpoints" / "a.json").write_text("{}")
    (shared / "checkpoints" / "a.json").chmod(0o644)
    (shared / "lb.alb.json").write_text("{}")
    (shared / "lb.alb.json").chmod(0o644)
    statedir.prepare(shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert stat.S_IMODE((shared / "someone-elses.txt").stat().st_mode) == 0o644
    assert stat.S_IMODE((shared / "checkpoints" / "a.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((shared / "lb.alb.json").stat().st_mode) == 0o600
    fresh = tmp_path / "a" / "b" / "state"
    old = os.umask(0o022)
    try:
        statedir.prepare(fresh)
    finally:
        os.umask(old)
    assert [stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "a", tmp_path / "a" / "b", fresh)] == [0o700] * 3
