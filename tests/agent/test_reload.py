"""Hot reload on SIGHUP with a real agent process while a writer appends numbered lines: the
receiver gets every line exactly once across several reloads (a transform added and changed,
a sink's batch size changed, a second sink added, the source itself changed), lines written
after a reload carry the new fields, a removed sink stops getting lines, and an invalid file is reported and changes nothing."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.agent.conftest import Receiver, blocked_in, log_events, wait_for


class Writer(threading.Thread):
    """Appends ``{"seq": n}`` lines steadily (about ``rate`` lines a second) until stopped."""

    def __init__(self, path: Path, rate: int = 600) -> None:
        super().__init__(daemon=True)
        self.path, self.rate = path, rate
        self.seq = 0
        self.halt = threading.Event()

    def run(self) -> None:
        with open(self.path, "a") as fh:
            while not self.halt.is_set():
                for _ in range(self.rate // 20):
                    fh.write(f'{{"seq":{self.seq},"msg":"line {self.seq:07d} with some padding"}}\n')
                    self.seq += 1
                fh.flush()
                self.halt.wait(0.05)


def base_config(tmp: Path, r1: Receiver) -> dict[str, Any]:
    return {
        "data_dir": str(tmp / "agent-data"), "metrics": {"port": 0}, "shutdown_timeout_secs": 5,
        "sources": {"app": {"type": "file", "include": [str(tmp / "app.log")], "parser": "json",
                            "poll_interval_secs": 0.05, "checkpoint_interval_secs": 0.2}},
        "sinks": {"main": {"type": "logharbor", "url": r1.url, "batch": {"timeout_secs": 0.2, "max_events": 500}}},
    }


def max_seq(r: Receiver) -> int:
    """The highest line number ``r`` has received (-1 before the first)."""
    return max((x["seq"] for x in r.records()), default=-1)




@pytest.mark.slow
def test_sighup_reloads_without_losing_or_repeating_a_line(tmp_path: Path, receiver_factory: Any,
                                                           agent_factory: Any) -> None:
    r1, r2 = receiver_factory(), receiver_factory()
    writer = Writer(tmp_path / "app.log")
    writer.start()
    cfg = base_config(tmp_path, r1)
    agent = agent_factory(cfg)
    path = agent.config
    marks: list[tuple[int, int]] = []  # (generation, first seq written after it was applied)

    def reload(new: dict[str, Any], generation: int) -> None:
        path.write_text(yaml.safe_dump(new, sort_keys=False))
        before = len(log_events(agent, "config reloaded"))
        assert agent.proc is not None
        agent.proc.send_signal(signal.SIGHUP)
        assert wait_for(lambda: len(log_events(agent, "config reloaded")) > before, 30), agent.log()
        marks.append((generation, writer.seq))
        # let lines flow under this config (a third of a second of the writer's lines)
        assert wait_for(lambda: max_seq(r1) >= marks[-1][1] + 200, 30), agent.log()

    try:
        assert wait_for(lambda: len(r1.records()) > 300, 30), agent.log()
        # 1: a transform added (new field) and the sink's batch size changed
        cfg["transforms"] = [{"type": "enrich", "fields": {"gen": 1}}]
        cfg["sinks"]["main"]["batch"]["max_events"] = 50
        reload(cfg, 1)
        # an invalid file: reported with file, key and reason; nothing changes
        path.write_text(yaml.safe_dump({**cfg, "sinks": {"main": {**cfg["sinks"]["main"], "batchh": 1}}}))
        agent.proc.send_signal(signal.SIGHUP)  # type: ignore[union-attr]
        assert wait_for(lambda: log_events(agent, "config reload failed: keeping the running config"), 30)
        bad = log_events(agent, "config reload failed: keeping the running config")[0]
        assert bad["file"] == str(path) and bad["key"] == "sinks.main.batchh"
        assert "Extra inputs are not permitted" in bad["reason"]
        kept = writer.seq  # lines go on flowing under the running config
        assert wait_for(lambda: max_seq(r1) >= kept + 200, 30), agent.log()
        # 2: the field changes and a second sink is added
        cfg["transforms"] = [{"type": "enrich", "fields": {"gen": 2}}]
        cfg["sinks"]["second"] = {"type": "logharbor", "url": r2.url, "batch": {"timeout_secs": 0.2}}
        reload(cfg, 2)
        # 3: the source itself changes (stopped, checkpointed, started again) and the batch again
        cfg["transforms"] = [{"type": "enrich", "fields": {"gen": 3}}]
        cfg["sources"]["app"]["poll_interval_secs"] = 0.1
        cfg["sinks"]["main"]["batch"]["max_events"] = 200
        reload(cfg, 3)
        # 4: the second sink is removed (drained, stopped); the first goes on
        del cfg["sinks"]["second"]
        reload(cfg, 3)
        removed_at = writer.seq
    finally:
        writer.halt.set()
        writer.join(5)
    total = writer.seq
    assert wait_for(lambda: len(r1.records()) >= total, 60), agent.log()
    assert agent.stop() == 0  # drains: a duplicate sent late is in the file now
    records = r1.records()
    assert sorted(x["seq"] for x in records) == list(range(total))  # every line, exactly once
    for generation, first in marks:
        late = [x for x in records if x["seq"] >= first]
        assert late and all(x.get("gen", 0) >= generation for x in late), generation
    early = [x for x in records if x["seq"] < 300]  # delivered before the first reload
    assert len(early) == 300 and all("gen" not in x for x in early)
    # the second sink: each line once, and every line written after it was added
    second = sorted(x["seq"] for x in r2.records())
    assert len(second) == len(set(second))
    assert set(range(marks[1][1], marks[2][1])) <= set(second)  # read a second before the removal
    assert max(second) < removed_at
    summary = log_events(agent, "config reloaded")
    assert [e["sinks_changed"] for e in summary] == [["main"], [], ["main"], []]
    assert [e["sinks_added"] for e in summary] == [[], ["second"], [], []]
    assert [e["sources_changed"] for e in summary] == [[], [], ["app"], []]
    assert summary[3]["sinks_removed"] == ["second"]
    assert not log_events(agent, "source failed")


def test_a_source_held_by_a_full_buffer_is_replaced_once_the_sink_is_fixed(tmp_path: Path,
                                                                           receiver_factory: Any) -> None:
    from logharbor.agent.config import load_config
    from logharbor.agent.pipeline import Agent

    live, dead = receiver_factory(), receiver_factory()
    dead.kill()
    log = tmp_path / "app.log"
    log.write_text("".join(f'{{"seq":{i},"pad":"{"x" * 100}"}}\n' for i in range(3000)))
    cfg = base_config(tmp_path, dead)
    cfg["sinks"]["main"].update({"retry_max_secs": 0.2, "buffer": {"max_bytes": 65536}})
    cfg["shutdown_timeout_secs"] = 1
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    agent = Agent(load_config(path), path)
    stop = threading.Event()
    agent.start(stop)
    try:
        old = agent.running["app"]
        buffer = agent.sinks["main"].buffer
        assert old.thread is not None
        assert wait_for(lambda: blocked_in(old.thread, type(buffer).put), 10)  # blocked in the full buffer
        # the source changes while it is blocked: it cannot stop yet, its successor waits for it
        cfg["sources"]["app"]["poll_interval_secs"] = 0.1
        path.write_text(yaml.safe_dump(cfg))
        assert agent.reload()
        assert "app" not in agent.running
        # the sink is fixed: the buffer drains, the old source stops, the new one takes over
        cfg["sinks"]["main"]["url"] = live.url
        path.write_text(yaml.safe_dump(cfg))
        assert agent.reload()
        assert wait_for(lambda: "app" in agent.running and agent.running["app"] is not old, 20)
        with open(log, "a") as fh:
            fh.write("".join(f'{{"seq":{i}}}\n' for i in range(3000, 3100)))
        assert wait_for(lambda: len(live.records()) >= 3100, 20)
    finally:
        stop.set()
        agent.shutdown()
    # shut down (drained): a line sent twice is in the file now
    assert sorted(x["seq"] for x in live.records()) == list(range(3100))
