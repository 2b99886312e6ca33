"""Long lines in container logs, as the runtimes write them: Docker's json-file driver and
containerd/CRI-O split a line at 16 KiB into parts (Docker: ``log`` without its newline; CRI: tag
``P`` up to the ``F`` part). The agent joins them into one record; a joined line over
``max_line_bytes`` ships its first bytes marked ``truncated`` with ``original_bytes`` (the rest of
its parts never make a record of their own), and a line whose last part never comes ships marked
``partial``. A real agent process ships to the counting receiver.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.agent.conftest import agent_metric, log_events, wait_for
from tests.agent.test_container_source import CID, DOCKER_ID, agent_cfg, append, kube_layout, messages

PART = 16 * 1024  # where Docker and containerd split a line


def docker_entries(text: str, stream: str = "stdout") -> str:
    """``text`` + newline as Docker's json-file driver writes it: 16 KiB parts, the last with "\\n"."""
    parts = [text[i:i + PART] for i in range(0, len(text), PART)] or [""]
    parts[-1] += "\n"
    return "".join(json.dumps({"log": p, "stream": stream, "time": "2026-11-25T04:00:00.5Z"}) + "\n"
                   for p in parts)


def cri_entries(text: str, stream: str = "stdout") -> str:
    """``text`` as containerd writes it: ``P`` parts of 16 KiB, then the ``F`` part."""
    parts = [text[i:i + PART] for i in range(0, len(text), PART)] or [""]
    return "".join(f"2026-11-25T04:00:00.5Z {stream} {'F' if i == len(parts) - 1 else 'P'} {p}\n"
                   for i, p in enumerate(parts))


def layout(tmp_path: Path, fmt: str) -> tuple[Path, dict[str, Any]]:
    if fmt == "docker":
        log = tmp_path / "docker" / DOCKER_ID / f"{DOCKER_ID}-json.log"
        log.parent.mkdir(parents=True)
        log.touch()
        return log, {"include": [str(tmp_path / "docker" / "*" / "*-json.log")], "format": "docker"}
    return kube_layout(tmp_path, cid=CID), {"format": "cri"}


@pytest.mark.parametrize("fmt", ["docker", "cri"])
def test_split_lines_are_joined_and_an_over_long_one_is_cut_and_marked(
        tmp_path: Path, receiver_factory: Any, agent_factory: Any, fmt: str) -> None:
    log, where = layout(tmp_path, fmt)
    entries = docker_entries if fmt == "docker" else cri_entries
    r = receiver_factory()
    cfg = agent_cfg(tmp_path, r.url, max_line_bytes=50_000, env_vars={}, **where)
    agent = agent_factory(cfg)
    whole = "w" * 40_000  # three parts, joined: under max_line_bytes
    over = "é" + "o" * 119_998  # 120,000 bytes in eight parts: cut at 50,000
    append(log, entries("before") + entries(whole) + entries(over) + entries("after"))
    assert wait_for(lambda: len(r.records()) >= 4, 30), agent.log()
    assert agent.stop() == 0  # drains: a record sent twice is in the file now
    recs = r.records()
    kept = over.encode()[:50_000].decode()
    assert messages(recs) == ["before", whole, kept, "after"]
    cut = recs[2]
    assert cut["truncated"] is True and cut["original_bytes"] == 120_000
    assert all("truncated" not in x and "partial" not in x for x in (recs[0], recs[1], recs[3]))
    [event] = log_events(agent, "line longer than the limit shipped truncated")
    assert event["original_bytes"] == 120_000 and event["kept_bytes"] == 50_000
    assert event["why"] == "container max_line_bytes"


@pytest.mark.parametrize("fmt", ["docker", "cri"])
def test_a_line_whose_last_part_never_comes_ships_marked_partial(
        tmp_path: Path, receiver_factory: Any, agent_factory: Any, fmt: str) -> None:
    """The container exited (or stalled) mid-line: after partial_timeout_secs the parts so far are
    shipped, saying so; the lines around it are untouched."""
    log, where = layout(tmp_path, fmt)
    entries = docker_entries if fmt == "docker" else cri_entries
    r = receiver_factory()
    cfg = agent_cfg(tmp_path, r.url, env_vars={}, **where)
    agent = agent_factory(cfg)
    text = "h" * (PART + 100)
    cut_short = entries(text).splitlines(keepends=True)[0]  # its first part only
    append(log, entries("before") + cut_short)
    assert wait_for(lambda: len(r.records()) >= 2, 30), agent.log()
    append(log, entries("after"))
    assert wait_for(lambda: len(r.records()) >= 3, 30), agent.log()
    assert agent_metric(cfg["metrics"]["port"], "logharbor_agent_lines_read_total", source="k8s") == 3
    assert agent_metric(cfg["metrics"]["port"], "logharbor_agent_lines_truncated_total", source="k8s") == 0
    assert agent.stop() == 0
    recs = r.records()
    assert messages(recs) == ["before", "h" * PART, "after"]
    assert recs[1]["partial"] is True and "truncated" not in recs[1]
    assert "partial" not in recs[0] and "partial" not in recs[2]
